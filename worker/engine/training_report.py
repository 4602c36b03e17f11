"""What a finished training job leaves behind: the model (safetensors + config), metrics as JSONL,
loss and accuracy curves as a PNG, a summary, an (empty-item) manifest and an HTML report."""

from __future__ import annotations

import base64
import html
import json

import safetensors.torch

from shared import keys
from shared.specs import ClassifierTrainSpec
from worker.engine.services import Services
from worker.pipelines.classifier_train import TrainData, Trainer
from worker.render.plots import finish_png, new_figure


def curves_png(history: list[dict[str, float]]) -> bytes:
    epochs = [h["epoch"] for h in history]
    figure, axes = new_figure(2, (9, 3.4))
    loss_axis, accuracy_axis = axes
    loss_axis.plot(epochs, [h["train_loss"] for h in history], label="train")
    loss_axis.plot(epochs, [h["test_loss"] for h in history], label="test")
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    accuracy_axis.plot(epochs, [h["train_accuracy"] for h in history], label="train")
    accuracy_axis.plot(epochs, [h["test_accuracy"] for h in history], label="test")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.01))
    return finish_png(figure, axes)


def write_training_outputs(
    services: Services, tenant: str, job_id: str, spec: ClassifierTrainSpec, trainer: Trainer, data: TrainData
) -> None:
    storage = services.storage
    state = {k: v.detach().cpu().contiguous() for k, v in trainer.model.state_dict().items()}
    storage.put_bytes(keys.model_weights(tenant, job_id), safetensors.torch.save(state))
    config = {
        "arch": spec.arch,
        "num_classes": len(data.classes),
        "input_size": spec.input_size,
        "preprocessing": spec.preprocessing,
        "class_names": list(data.classes),
    }
    storage.put_json(keys.model_config(tenant, job_id), config)
    metrics = "".join(json.dumps(h) + "\n" for h in trainer.history)
    storage.put_bytes(keys.training_file(tenant, job_id, "metrics.jsonl"), metrics.encode(), "application/x-ndjson")
    curves = curves_png(trainer.history)
    storage.put_bytes(keys.training_file(tenant, job_id, "curves.png"), curves, "image/png")
    final = trainer.history[-1]
    summary = {
        "job": job_id,
        "kind": spec.kind,
        "status": "succeeded",
        "epochs": trainer.epoch,
        "train_items": len(data.train_y),
        "test_items": len(data.test_y),
        "skipped_items": data.skipped,
        "classes": list(data.classes),
        "test_accuracy": round(final["test_accuracy"], 4),
        "test_loss": round(final["test_loss"], 4),
        "model": {"job": job_id},
    }
    storage.put_json(keys.summary(tenant, job_id), summary)
    storage.put_json(keys.manifest(tenant, job_id), {"job": job_id, "status": "succeeded", "total": 0, "items": []})
    outputs = {
        "model": keys.model_weights(tenant, job_id),
        "config": keys.model_config(tenant, job_id),
        "metrics": keys.training_file(tenant, job_id, "metrics.jsonl"),
        "curves": keys.training_file(tenant, job_id, "curves.png"),
    }
    storage.put_json(keys.training_file(tenant, job_id, "outputs.json"), outputs)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(spec.name or job_id)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem}} td,th{{border:1px solid #ddd;padding:4px 8px}}
table{{border-collapse:collapse}}</style></head><body>
<h1>{html.escape(spec.name or f"classifier_train job {job_id}")}</h1>
<p>{html.escape(spec.arch)} on <code>{html.escape(spec.input)}</code>: {len(data.classes)} classes
({html.escape(", ".join(data.classes[:20]))}), {len(data.train_y)} training and {len(data.test_y)} test images,
{data.skipped} archive members skipped.</p>
<p><b>Test accuracy {final["test_accuracy"]:.2%}</b> (loss {final["test_loss"]:.4f}) after {trainer.epoch} epochs.
Use the model as <code>{{"job": "{html.escape(job_id)}"}}</code>.</p>
<img alt="loss and accuracy curves" src="data:image/png;base64,{base64.b64encode(curves).decode()}">
<table><tr><th>epoch</th><th>train loss</th><th>train acc.</th><th>test loss</th><th>test acc.</th></tr>
{"".join(f"<tr><td>{h['epoch']}</td><td>{h['train_loss']:.4f}</td><td>{h['train_accuracy']:.2%}</td><td>{h['test_loss']:.4f}</td><td>{h['test_accuracy']:.2%}</td></tr>" for h in trainer.history)}
</table></body></html>"""
    storage.put_bytes(keys.report(tenant, job_id), page.encode(), "text/html; charset=utf-8")
