"""wgnn batch: a folder of images through BlazeFace in one process and on a local Ray cluster, one
Parquet row per input, bad files as error rows, reruns skipping what is done."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import fetch_or_skip

from wgnn import cli

pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("tqdm")
pytest.importorskip("PIL")

FRAMES = 52


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """52 frames of the synthetic camera (the astronaut photo, panned and zoomed) as JPEG and PNG,
    a truncated JPEG and a text file."""
    from PIL import Image

    from wgnn.demo import SyntheticCamera

    path = tmp_path_factory.mktemp("images")
    cam = SyntheticCamera(320, 240)
    for i in range(FRAMES):
        Image.fromarray(cam.frame(i * 5)).save(path / f"frame_{i:03d}.{'png' if i % 4 == 0 else 'jpg'}")
    data = (path / "frame_001.jpg").read_bytes()
    (path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (path / "notes.txt").write_text("not an image")
    return path


def _rows(path):
    return pq.read_table(path).to_pylist()


def _run(argv, capsys) -> str:
    assert cli.main(argv) == 0
    return capsys.readouterr().out


def test_one_process_and_ray_agree_row_for_row(device, folder, tmp_path, capsys):
    fetch_or_skip("face_detection_short_range")
    local, on_ray = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    said = _run(["batch", "face_detection_short_range", str(folder), "--out", str(local), "--batch-size", "8"], capsys)
    assert f"{FRAMES + 2} inputs in" in said and "2 errors" in said
    rows = _rows(local)
    assert len(rows) == FRAMES + 2 and [r["index"] for r in rows] == list(range(FRAMES + 2))
    errors = {r["path"].rsplit("/", 1)[-1]: r["error"] for r in rows if r["error"]}
    assert set(errors) == {"truncated.jpg", "notes.txt"}
    assert "cannot identify image file" in errors["notes.txt"]
    good = [r for r in rows if not r["error"]]
    # the astronaut's one face, in every frame, where the camera moved it
    assert all(len(r["boxes"]) == 1 and r["boxes"][0][4] > 0.5 for r in good)
    assert len({round(r["boxes"][0][0]) for r in good}) > 10
    assert all(r["regressors__shape"] == [896, 16] and len(r["regressors"]) == 896 * 16 for r in good)

    pytest.importorskip("ray.data")
    said = _run(["batch", "face_detection_short_range", str(folder), "--out", str(on_ray), "--ray",
                 "--workers", "2", "--batch-size", "8"], capsys)
    assert "Ray (2 workers)" in said
    other = _rows(on_ray)
    assert len(other) == len(rows)
    for a, b in zip(rows, other):
        assert (a["index"], a["path"], a["error"]) == (b["index"], b["path"], b["error"])
        if not a["error"]:
            np.testing.assert_allclose(a["regressors"], b["regressors"], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(a["classificators"], b["classificators"], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(np.array(a["boxes"]), np.array(b["boxes"]), atol=1e-3)


def test_a_rerun_skips_what_is_done_and_a_table_of_bytes_works(device, folder, tmp_path, capsys):
    import pyarrow as pa

    fetch_or_skip("face_detection_short_range")
    files = sorted(folder.glob("frame_00*.jpg"))[:4]
    table = tmp_path / "inputs.parquet"
    pq.write_table(pa.table({"path": [f.name for f in files], "bytes": [f.read_bytes() for f in files]}), table)
    out = tmp_path / "out.parquet"
    said = _run(["batch", "face_detection_short_range", str(table), "--out", str(out)], capsys)
    assert "4 inputs in" in said and "0 errors" in said
    first = _rows(out)
    assert [r["path"] for r in first] == [f.name for f in files] and all(r["boxes"] for r in first)
    said = _run(["batch", "face_detection_short_range", str(table), "--out", str(out)], capsys)
    assert "0 inputs in" in said and _rows(out) == first


def test_batch_mistakes_are_one_line(folder, tmp_path, capsys):
    for argv, message in ((["batch", "squeezenet", str(tmp_path / "nothing*"), "--out", str(tmp_path / "o.parquet")],
                           "no such folder"),
                          (["batch", "squeezenet", str(folder), "--out", str(tmp_path / "o.parquet"), "--preset", "x"],
                           "--preset must be one of")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and len([line for line in err if line.startswith("wgnn")]) == 1


def test_sentences_in_one_process_and_on_ray(device, tmp_path, capsys):
    """all-MiniLM-L6-v2 over a text file (a sentence a line) and over a table's text column: each
    row's embedding is the one the model gives the sentence alone, the same on Ray; a table
    without text says so in its rows."""
    import pyarrow as pa

    import wgnn
    from wgnn import bert, zoo

    fetch_or_skip("all_minilm_l6_v2")
    sentences = ["A man is eating food.", "The girl is carrying a baby.", "", "Un café, s'il vous plaît!",
                 "A monkey is playing drums in the forest while the birds sing."] * 3
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(sentences) + "\n")
    out, on_ray = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    said = _run(["batch", "all_minilm_l6_v2", str(corpus), "--out", str(out), "--batch-size", "4"], capsys)
    assert "15 inputs in" in said and "sentences/s" in said and "0 errors" in said
    rows = _rows(out)
    assert [r["path"] for r in rows] == [f"{corpus}#{i + 1}" for i in range(15)]
    session = wgnn.InferenceSession(str(zoo.fetch("all_minilm_l6_v2")))
    tokenizer = bert.tokenizer_from_archive(zoo.shipped("all_minilm_l6_v2"))
    for row, sentence in zip(rows, sentences):
        (alone,) = session.run(["sentence_embedding"], tokenizer([sentence]).feeds())
        assert row["sentence_embedding__shape"] == [384]
        np.testing.assert_allclose(row["sentence_embedding"], alone[0], atol=2e-5)

    pytest.importorskip("ray.data")
    table = tmp_path / "table.parquet"
    pq.write_table(pa.table({"text": sentences[:5]}), table)
    said = _run(["batch", "all_minilm_l6_v2", str(table), "--out", str(on_ray), "--ray", "--workers", "2",
                 "--batch-size", "2"], capsys)
    assert "Ray (2 workers)" in said
    for a, b in zip(_rows(on_ray), rows[:5]):
        np.testing.assert_allclose(a["sentence_embedding"], b["sentence_embedding"], atol=2e-5)
    images = tmp_path / "images.parquet"
    pq.write_table(pa.table({"path": ["x.jpg"]}), images)
    said = _run(["batch", "all_minilm_l6_v2", str(images), "--out", str(tmp_path / "none.parquet")], capsys)
    assert "1 errors" in said and "a text model takes sentences" in _rows(tmp_path / "none.parquet")[0]["error"]
