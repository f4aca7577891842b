"""The labelling web app: server-rendered pages (no JavaScript build, no front-end step), FastAPI in front of the store.

  GET  /a/TOKEN            the annotator's next item (or "all done"), with their progress
  POST /a/TOKEN/ID         submit a label for assignment ID; answers with a redirect to the next item (303), or the
                           same page with the problem (422); a second submission of the same assignment changes nothing
  GET  /admin/TOKEN        progress, agreement, gold accuracy, self-consistency, position bias, flagged annotators
  GET  /admin/TOKEN/export.jsonl   the labels as rewardkit records (rewardkit.label.export)
  POST /admin/TOKEN/next-batch     move the next batch of pooled pairs to the annotators, chosen by active selection
                           (rewardkit.label.active) with the campaign's reward model
  GET  /health
A token that is not an annotator's (or, on /admin, not the admin's) gets 404: nothing says whether it exists.
Model text is escaped everywhere (Jinja2 autoescape): responses often contain HTML and markdown.
"""

# No `from __future__ import annotations`: FastAPI reads the route functions' annotations when they are defined.
import json
from pathlib import Path

from markupsafe import Markup

from rewardkit.label.active import pair_items, rank_pairs
from rewardkit.label.clips import bounds, clip_svg
from rewardkit.label.export import export_records
from rewardkit.label.quality import campaign_quality
from rewardkit.label.store import LabelStore
from rewardkit.label.tasks import FormError, parse_form, shown_order

TEMPLATES = Path(__file__).parent / "templates"


def as_text(value) -> str:
    """A text or a conversation ([{role, content}]) as plain text to show (escaped by the template)."""
    if isinstance(value, list):
        return "\n\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in value)
    return str(value)


def next_batch(store: LabelStore, campaign: dict, scorer, how: str, batch: int, seed: int = 0) -> int:
    """Assign the `batch` pooled pairs active selection ranks first; returns how many were assigned."""
    from rewardkit.eval.scorers import score_items
    from rewardkit.scores import Scores

    pool = store.pooled(campaign["name"])
    if not pool:
        return 0
    contents = [content for _, content in pool]
    scores = Scores([0.0] * 2 * len(pool)) if how == "random" else score_items(scorer, pair_items(contents))
    chosen = [pool[i][0] for i in rank_pairs(how, scores, seed)[:batch]]
    store.assign_pooled(campaign["name"], chosen, campaign["settings"].get("per_item", 2), seed)
    return len(chosen)


def create_app(store: LabelStore, threshold: float = 0.7, scorer=None, selection: str = "random", batch: int = 0):
    """The app; `scorer` (rewardkit.eval.scorers) and `selection` pick each next batch of `batch` pooled pairs."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    pages = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    pages.filters["text"] = as_text
    app = FastAPI(title="rewardkit labelling")

    def annotator(token: str) -> dict:
        person = store.person(token)
        if person is None or person["role"] != "annotator":
            raise HTTPException(404, "no such page")
        return person

    def admin(token: str) -> dict:
        person = store.person(token)
        if person is None or person["role"] != "admin":
            raise HTTPException(404, "no such page")
        return person

    def item_page(person: dict, token: str, assignment, error: str = "", status: int = 200) -> HTMLResponse:
        done, total = store.progress(person["id"])
        if assignment is None:
            return HTMLResponse(pages.get_template("done.html.j2").render(person=person, done=done, total=total))
        order = shown_order(person["kind"], assignment.content, assignment.flipped)
        clips = None
        if person["kind"] == "clips":  # SVG made here from numbers only: safe to insert as markup
            segments = assignment.content["segments"]
            box = bounds(segments)
            clips = [Markup(clip_svg(segments[i], box)) for i in order]
        html = pages.get_template("annotate.html.j2").render(
            person=person, token=token, assignment=assignment, item=assignment.content, order=order, error=error,
            clips=clips,
            done=done, total=total, attributes=person["settings"].get("attributes", ["score"]),
            scale=person["settings"].get("scale", 5))
        return HTMLResponse(html, status_code=status)

    @app.get("/a/{token}", response_class=HTMLResponse)
    def next_item(token: str):
        person = annotator(token)
        return item_page(person, token, store.next_assignment(person["id"]))

    @app.post("/a/{token}/{assignment_id}")
    async def submit(token: str, assignment_id: int, request: Request):
        person = annotator(token)
        assignment = store.assignment(person["id"], assignment_id)
        if assignment is None:  # someone else's assignment, or none at all
            raise HTTPException(404, "no such page")
        form = dict(await request.form())
        order = shown_order(person["kind"], assignment.content, assignment.flipped)
        settings = person["settings"]
        try:
            value = parse_form(person["kind"], assignment.content, order, form, settings.get("attributes", ["score"]),
                               settings.get("scale", 5))
        except FormError as err:
            return item_page(person, token, assignment, error=str(err), status=422)
        store.submit(assignment.id, value)  # False (already recorded) needs nothing more: the first label stands
        return RedirectResponse(f"/a/{token}", status_code=303)

    @app.get("/admin/{token}", response_class=HTMLResponse)
    def admin_page(token: str):
        person = admin(token)
        quality = campaign_quality(person["kind"], store.campaign_labels(person["campaign"]), threshold)
        pool = store.pool_size(person["campaign"])  # not store.campaign: that reads every item
        return HTMLResponse(pages.get_template("admin.html.j2").render(person=person, token=token, quality=quality,
                                                                        threshold=threshold, pool=pool, batch=batch,
                                                                        selection=selection))

    @app.post("/admin/{token}/next-batch")
    def add_batch(token: str):
        person = admin(token)
        campaign = store.campaign(person["campaign"])
        if person["kind"] != "pairwise" or batch < 1:
            raise HTTPException(422, "active selection works on pairwise campaigns started with a batch size")
        next_batch(store, campaign, scorer, selection, batch)
        return RedirectResponse(f"/admin/{token}", status_code=303)

    @app.get("/admin/{token}/export.jsonl")
    def export(token: str):
        person = admin(token)
        campaign = store.campaign(person["campaign"])
        records = export_records(person["kind"], campaign["contents"], store.campaign_labels(person["campaign"]))
        return PlainTextResponse("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                 media_type="application/jsonl")

    @app.get("/health")
    def health():
        return {"status": "ok"}

    return app
