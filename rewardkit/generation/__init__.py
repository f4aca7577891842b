"""Generation backends: n sampled responses per prompt, from a local model or an OpenAI-compatible server."""

from rewardkit.generation.base import Generated, Generator, Prompt, Sample, Sampling, as_messages

__all__ = ["Generated", "Generator", "Prompt", "Sample", "Sampling", "as_messages", "load_generator"]


def load_generator(spec: str, **options) -> Generator:
    """'local:MODEL' (a directory, .gguf file or 'smollm2') or an http(s) base URL with options['model']."""
    if spec.startswith(("http://", "https://")):
        from rewardkit.generation.openai import OpenAIGenerator

        return OpenAIGenerator(spec, **options)
    from rewardkit.generation.local import LocalGenerator

    return LocalGenerator(spec.removeprefix("local:"), **options)
