"""Rewards for control and robot actions, learned from preferences and used to train policies.

Vocabulary
- A *step* is one (observation, action) pair: an observation vector [D_obs] and either one action [D_act] or an
  *action chunk* [K, D_act] (the K actions a VLA policy emits at once).
- A *segment* is T consecutive steps of one episode, with the episode's language *instruction* (optional) and,
  when known, the environment's true step rewards [T] (simulated teachers and evaluation use them).
- A *step reward model* gives a reward per step and, as for process reward models (rewardkit.model.steps), a
  segment's reward is an aggregate of its step rewards: here the *sum* (the segment's return).
  It is an *ensemble* of M members trained on the same labels in different orders; their disagreement picks
  queries.
- A *query* is a pair of segments (a, b) shown to a *teacher*; its *label* is P(a is preferred): 1, 0, 0.5 for
  "equally good", or no label when the teacher skips it. Simulated teachers follow B-Pref (rewardkit.control.teachers).
- A *round* (PEBBLE) alternates: collect segments with the current policy, ask the teacher about the queries the
  selection rule picks, refit the reward model, relabel the policy's replay buffer, train the policy.

Modules, in the order a round uses them: segments, reward, teachers, queries, learn, envs, loop, quality.
"""
