"""Export: graphs, metadata, refusal of bad files, int8 parity for every registered model
(the ``exported`` fixture of conftest: tiny models, briefly trained, exported once)."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from typer.testing import CliRunner

from edgesleep.cli import app
from edgesleep.dsp.inputs import get_kind
from edgesleep.errors import InputError
from edgesleep.export.graphs import check_graph, export_graphs
from edgesleep.metadata import file_digest
from edgesleep.ort import ExportedModel, cpu_info
from edgesleep.stager import Stager, score_signal
from edgesleep.train import checkpoint as ckpt_io
from edgesleep.train.data import normalise
from edgesleep.train.models import build, make_config


def test_graphs_check_and_gru_attribute(exported: dict) -> None:
    graphs = export_graphs(exported["ckpt"])
    for proto in graphs.values():
        summary = check_graph(proto)
        assert summary["opset"] == 17
    if exported["name"] == "seqsleepnet":
        proto = graphs["sequence"]
        gru = next(n for n in proto.graph.node if n.op_type == "GRU")
        attr = next(a for a in gru.attribute if a.name == "linear_before_reset")
        attr.CopyFrom(helper.make_attribute("linear_before_reset", 0))
        with pytest.raises(ValueError, match="linear_before_reset"):
            check_graph(proto)
    else:  # the student quantizes completely: no op outside the int8 set is left unwrapped
        ops = set(exported["report"]["graphs"]["int8/encoder"]["ops"])
        assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and "GRU" not in ops


@pytest.mark.parametrize("batch,seq_len", [(1, 20), (3, 7), (2, 23)])
def test_fp32_graphs_equal_torch_at_any_batch_and_length(
    exported: dict, batch: int, seq_len: int
) -> None:
    ckpt = exported["ckpt"]
    rng = np.random.default_rng(0)
    images = rng.normal(-20, 10, (batch, seq_len, 29, 129)).astype(np.float32)
    with torch.no_grad():
        reference = ckpt.build()(torch.from_numpy(normalise(images, ckpt.norm_mean, ckpt.norm_std)))
    model = ExportedModel(exported["root"] / "out", "fp32")
    vectors = model.encode(images.reshape(-1, 29, 129)).reshape(batch, seq_len, -1)
    np.testing.assert_allclose(model.logits(vectors), reference.numpy(), atol=1e-4)
    whole = onnx.load(exported["root"] / "out" / "fp32" / "model.onnx")
    import onnxruntime as ort

    session = ort.InferenceSession(whole.SerializeToString())
    np.testing.assert_allclose(
        session.run(None, {"images": images})[0], reference.numpy(), atol=1e-4
    )


def test_metadata_round_trip(exported: dict) -> None:
    ckpt, model = exported["ckpt"], ExportedModel(exported["root"] / "out")
    info = model.info
    assert info.precision == "int8" and model.graphs["sequence"].info.precision == "int8"
    assert info.model == ckpt.model and info.channel == exported["channel"]
    assert info.labels == ckpt.class_labels and info.seq_len == ckpt.seq_len
    assert info.input == get_kind("stft").spec() and info.raw["unit"] == "uV"
    assert info.synthetic and info.raw["provenance"] == json.loads(json.dumps(ckpt.provenance))
    np.testing.assert_allclose(info.raw["normalisation"]["mean_db"], ckpt.norm_mean, atol=1e-4)
    assert info.raw["normalisation"]["baked_into_graph"]
    assert info.raw["flops"]["per_new_epoch"] > 0 and info.raw["edgesleep_version"]
    if ckpt.model == "seqsleepnet":
        assert info.session_options == {"session.disable_quant_qdq": "1"}
    assert model.info.raw["export_id"] == model.graphs["sequence"].info.raw["export_id"]


def test_int8_parity(exported: dict) -> None:
    """int8 against torch on the tiny nights (the x86 CPU flags are logged)."""
    logging.getLogger(__name__).warning("CPU for int8 parity: %s", cpu_info())
    report = exported["report"]["variants"]
    parity = report["int8"]["parity"]
    assert report["fp32"]["parity"]["max_abs_logit_diff"] < 1e-4
    assert report["fp32"]["parity"]["epoch_agreement"] == 1.0
    assert parity["max_abs_logit_diff"] < 0.5, parity
    assert parity["window_argmax_agreement"] >= 0.95, parity
    assert abs(parity["accuracy_delta_points"]) <= 3.0, parity
    if exported["name"] == "seqsleepnet":  # weight-only int8 shrinks even a tiny model
        sizes = report["int8"]["bytes"], report["fp32"]["bytes"]
        assert sizes[0]["model"] < sizes[1]["model"]
    else:  # calibrated on every night of the subjects it was trained on (2 nights each)
        trained = exported["ckpt"].provenance["train_subjects"]
        quant = report["int8"]["quantization"]
        assert quant["calibration_subjects"] == len(trained)
        assert quant["calibration_nights"] == 2 * len(trained)


def test_tampered_and_foreign_files_are_refused(exported: dict, tmp_path: Path) -> None:
    src = exported["root"] / "out" / "fp32"
    folder = tmp_path / "fp32"
    shutil.copytree(src, folder)
    data = bytearray((folder / "encoder.onnx").read_bytes())
    meta = json.loads(onnx.load(folder / "encoder.onnx").metadata_props[0].value)
    # a weight: the float32 bytes of the last initializer, changed in place
    proto = onnx.load(folder / "encoder.onnx")
    raw = proto.graph.initializer[-1].raw_data or np.float32(1.0).tobytes()
    at = bytes(data).find(raw[:8])
    data[at] ^= 0xFF
    (folder / "encoder.onnx").write_bytes(bytes(data))
    with pytest.raises(InputError, match="SHA-256 mismatch"):
        ExportedModel(folder)
    # metadata edited (channel), same length
    shutil.copy(src / "encoder.onnx", folder / "encoder.onnx")
    data = (folder / "encoder.onnx").read_bytes()
    channel = json.dumps(meta["channel"]).encode()
    edited = data.replace(channel, channel.replace(b"Fpz", b"XXX"), 1)
    (folder / "encoder.onnx").write_bytes(edited)
    with pytest.raises(InputError, match="SHA-256 mismatch"):
        ExportedModel(folder)
    # no metadata at all
    proto = onnx.load(src / "encoder.onnx")
    del proto.metadata_props[:]
    onnx.save(proto, folder / "encoder.onnx")
    with pytest.raises(InputError, match="no edgesleep metadata"):
        ExportedModel(folder)
    # graphs of two exports mixed
    shutil.copy(src / "encoder.onnx", folder / "encoder.onnx")
    shutil.copy(exported["root"] / "out" / "int8" / "sequence.onnx", folder / "sequence.onnx")
    with pytest.raises(InputError, match="different exports"):
        ExportedModel(folder)
    with pytest.raises(InputError, match="no such model"):
        ExportedModel(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no int8/fp32 model"):
        ExportedModel(tmp_path / "empty")


def test_digest_helper() -> None:
    digest = "ab" * 32
    data = b"head" + digest.encode() + b"tail"
    assert file_digest(data, digest) == file_digest(b"head" + b"0" * 64 + b"tail", "0" * 64)
    with pytest.raises(ValueError):
        file_digest(data + digest.encode(), digest)


def test_export_verb(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = make_config("student", n_classes=3, n_bands=8, channels=(8, 8, 8), epoch_dim=8)
    ones = np.ones(129, np.float32)
    state = build("student", cfg).state_dict()
    ckpt_io.Checkpoint("student", asdict(cfg), state, "ECG", ones * -20, ones * 10).save(
        tmp_path / "s.pt"
    )
    runner = CliRunner()
    ckpt = str(tmp_path / "s.pt")
    result = runner.invoke(app, ["export", ckpt, "--out", str(tmp_path / "e"), "--quantize"])
    assert result.exit_code == 2 and "--calibration" in result.output
    args = ["export", ckpt, "--out", str(tmp_path / "e"), "--quantize", "--target", "x86"]
    result = runner.invoke(app, [*args, "--calibration", str(tiny_dataset)])
    assert result.exit_code == 0, result.output
    assert "| int8 |" in result.output and (tmp_path / "e" / "int8" / "encoder.onnx").is_file()
    info = ExportedModel(tmp_path / "e").info
    assert info.session_options == {"session.x64quantprecision": "1"}
    result = runner.invoke(app, ["export", ckpt, "--target", "mips", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "portable" in result.output


def test_exports_before_the_streaming_field_load_other_formats_are_refused(
    exported: dict, tmp_path: Path
) -> None:
    from edgesleep.export.graphs import save
    from edgesleep.metadata import META_KEY

    src = exported["root"] / "out" / "fp32"
    for name in ("encoder", "sequence"):
        proto = onnx.load(src / f"{name}.onnx")
        meta = json.loads(next(p.value for p in proto.metadata_props if p.key == META_KEY))
        del meta["readout"]["streaming"]  # as exports made before the model registry
        save(proto, meta, tmp_path / "before" / f"{name}.onnx")
        save(proto, {**meta, "format": 99}, tmp_path / "future" / f"{name}.onnx")
        save(proto, {**meta, "readout": {**meta["readout"], "streaming": "state"}},
             tmp_path / "state" / f"{name}.onnx")  # fmt: skip
    before = ExportedModel(tmp_path / "before")
    assert before.info.streaming == "window" and before.step is None
    signal = np.random.default_rng(0).normal(0, 20, 12 * 3000)
    stager = Stager(before, 100.0, delay=0)  # two calls per epoch, as before the step graph
    streamed = stager.push(signal) + stager.flush()
    offline = score_signal(before, signal, 100.0, delay=0)
    assert [r.stage for r in streamed] == [r.stage for r in offline] and len(offline) == 12
    with pytest.raises(InputError, match="format 99.*re-export"):
        ExportedModel(tmp_path / "future")
    with pytest.raises(InputError, match="streaming mode 'state'"):
        ExportedModel(tmp_path / "state")
    ckpt = exported["root"] / "m.pt"
    payload = torch.load(ckpt, weights_only=True)
    torch.save({**payload, "format_version": 2}, tmp_path / "future.pt")
    with pytest.raises(InputError, match="checkpoint format 2.*train it again"):
        ckpt_io.load(tmp_path / "future.pt")
