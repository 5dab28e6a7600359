"""The ``corrloss`` command through its entry point: exit codes, messages and outputs."""

import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from sklearn_corrloss import cli, report
from sklearn_corrloss.datasets.synthetic import make_au_faces
from sklearn_corrloss.persistence import load_model, model_info

TINY_MODEL = [
    "--backbone", "small_cnn", "--weights", "none", "--image-size", "16", "--hidden-units", "4",
    "--epochs", "1", "--batch-size", "16", "--no-face-crop", "--quiet",
]  # fmt: skip
SYNTHETIC = ["--synthetic-subjects", "4", "--synthetic-frames", "8", "--synthetic-size", "32"]


def run(capsys, *argv):
    """``main(argv)`` -> (exit status, stdout, stderr)."""
    status = cli.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *fragments):
    assert status == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def image_manifest(tmp_path_factory):
    """32 PNG faces of 4 subjects with a manifest CSV (path, subject, task, AU columns)."""
    folder = tmp_path_factory.mktemp("faces")
    faces = make_au_faces(n_subjects=4, n_frames=8, image_size=32, random_state=0)
    paths = []
    for index, image in enumerate(faces.images):
        path = folder / "img" / f"{index:03d}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(f"img/{path.name}")
    table = pd.DataFrame({"path": paths, "subject": faces.subjects, "task": faces.tasks})
    manifest = folder / "faces.csv"
    pd.concat([table, faces.labels], axis=1).to_csv(manifest, index=False)
    return manifest, faces


@pytest.fixture(scope="module")
def trained_model(image_manifest, tmp_path_factory):
    manifest, _ = image_manifest
    path = tmp_path_factory.mktemp("model") / "model.zip"
    status = cli.main(["train", str(manifest), "-o", str(path), "--rho", "0.3", *TINY_MODEL])
    assert status == 0
    return path


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert "corrloss" in capsys.readouterr().out
    for command in ("demo", "train", "evaluate", "predict", "search", "cross-dataset",
                    "calibrate", "manifest"):  # fmt: skip
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"corrloss {command}" in capsys.readouterr().out


def test_console_script_entry_point_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_corrloss.cli", "evaluate", "no-model.zip", "x.csv"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "corrloss evaluate: error: Model file not found: no-model.zip"


def test_train_writes_a_model_with_the_settings(trained_model, image_manifest):
    _, faces = image_manifest
    info = model_info(trained_model)
    assert info["class"] == "CorrLossAUClassifier"
    assert info["params"]["rho"] == 0.3 and info["params"]["backbone"] == "small_cnn"
    assert info["attributes"]["classes_"] == list(faces.labels.columns)
    assert info["preprocessing"] == {"face_crop": None}
    assert info["dropped_params"] == []


def test_train_reads_a_toml_config_and_flags_win(image_manifest, tmp_path, capsys):
    manifest, _ = image_manifest
    config = tmp_path / "model.toml"
    config.write_text("[estimator]\nrho = 0.6\nhidden_units = 6\nmax_epochs = 1\n")
    output = tmp_path / "model.zip"
    tiny = ["--backbone", "small_cnn", "--weights", "none", "--image-size", "16"]
    status, out, _ = run(capsys, "train", manifest, "-o", output, "--config", config, *tiny,
                         "--hidden-units", "4", "--no-face-crop", "--quiet", "--aus", "AU01",
                         "AU02")  # fmt: skip
    assert status == 0, out
    params = model_info(output)["params"]
    assert params["rho"] == 0.6 and params["hidden_units"] == 4  # flag beats config
    assert model_info(output)["attributes"]["classes_"] == ["AU01", "AU02"]
    config.write_text("[estimator]\nlearning_rate = 0.1\n")
    status, _, err = run(capsys, "train", manifest, "-o", output, "--config", config)
    assert_one_line_error(status, err, "unknown [estimator] setting(s) ['learning_rate']")


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["train", "missing.csv", "-o", "m.zip"], ["Manifest missing.csv does not exist"]),
        (["train", "synthetic:moon", "-o", "m.zip"], ["Unknown synthetic domain 'moon'"]),
        (["train", "nosuchloader:/data", "-o", "m.zip"], ["Unknown data set 'nosuchloader'"]),
        (["train", "synthetic:lab", "-o", "m.zip", "--backbone", "alexnet"],
         ["Unknown backbone 'alexnet'", "small_cnn"]),
        (["train", "synthetic:lab", "-o", "m.zip", "--aus", "AU99", *SYNTHETIC],
         ["AU(s) ['AU99'] are not in the data"]),
        (["manifest", "nosuch", ".", "-o", "m.csv"], ["Unknown data set 'nosuch'"]),
        (["cross-dataset", "synthetic:lab", "synthetic:wild"], ["give --rho"]),
    ],
)  # fmt: skip
def test_user_mistakes_give_one_line_errors(capsys, argv, fragments):
    status, _, err = run(capsys, *argv)
    assert_one_line_error(status, err, *fragments)


def test_wrong_manifest_columns(tmp_path, capsys):
    manifest = tmp_path / "bad.csv"
    manifest.write_text("file,person,AU01\na.png,p1,1\n")
    status, _, err = run(capsys, "train", manifest, "-o", tmp_path / "m.zip")
    assert_one_line_error(status, err, "no 'path' column")


def test_evaluate_reports_per_au_and_refuses_another_au_set(
    trained_model, image_manifest, tmp_path, capsys
):
    manifest, faces = image_manifest
    output = tmp_path / "report.csv"
    status, out, _ = run(capsys, "evaluate", trained_model, manifest, "-o", output, "--quiet")
    assert status == 0
    assert "correlation distance" in out
    report_table = pd.read_csv(output)
    assert report_table["au"].tolist() == [*faces.labels.columns, "macro"]
    other = tmp_path / "other.csv"
    table = pd.read_csv(manifest).drop(columns=["AU12"])
    table["path"] = [str(manifest.parent / p) for p in table["path"]]
    table.to_csv(other, index=False)
    status, _, err = run(capsys, "evaluate", trained_model, other, "--quiet")
    assert_one_line_error(status, err, "lack ['AU12']", "another AU set")


def test_predict_images_folders_and_video_to_csv(trained_model, image_manifest, tmp_path, capsys):
    manifest, faces = image_manifest
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 32))
    for image in faces.images[:5]:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    image = manifest.parent / "img" / "000.png"
    output = tmp_path / "probabilities.csv"
    status, out, _ = run(capsys, "predict", trained_model, image, video, manifest.parent / "img",
                         "-o", output, "--every", "2", "--quiet")  # fmt: skip
    assert status == 0, out
    table = pd.read_csv(output)
    assert list(table.columns) == ["source", "frame", *faces.labels.columns]
    assert len(table) == 1 + 3 + len(faces.images)  # one image, frames 0, 2, 4, the folder
    assert table.loc[table["source"] == str(video), "frame"].tolist() == [0, 2, 4]
    assert table[list(faces.labels.columns)].apply(lambda c: c.between(0, 1)).all().all()
    # The probabilities are the model's for those images.
    model = load_model(trained_model)
    expected = model.predict_proba(np.asarray([str(image)], dtype=object))
    np.testing.assert_allclose(table.iloc[0, 2:].to_numpy(float), expected[0], atol=1e-4)


def test_predict_input_errors(trained_model, tmp_path, capsys):
    status, _, err = run(capsys, "predict", trained_model, tmp_path / "nothing.png")
    assert_one_line_error(status, err, "Input not found")
    (tmp_path / "notes.txt").write_text("x")
    status, _, err = run(capsys, "predict", trained_model, tmp_path / "notes.txt")
    assert_one_line_error(status, err, "unsupported file type '.txt'")


def test_predict_crops_faces_on_the_way(trained_model, image_manifest, capsys):
    manifest, _ = image_manifest
    image = manifest.parent / "img" / "001.png"
    status, out, _ = run(capsys, "predict", trained_model, image, "--face-crop",
                         "--detector", "haar", "--quiet")  # fmt: skip
    assert status == 0
    table = pd.read_csv(pd.io.common.StringIO(out))
    assert len(table) == 1 and table.loc[0, "source"] == str(image)


def test_search_cross_dataset_and_calibrate_write_tables(tmp_path, capsys):
    status, out, _ = run(capsys, "search", "synthetic:lab", "--rhos", "0", "0.5", "--folds", "2",
                         "-o", tmp_path / "search", *SYNTHETIC, *TINY_MODEL)  # fmt: skip
    assert status == 0
    summary = pd.read_csv(tmp_path / "search" / "rho_search.csv")
    assert summary["rho"].tolist() == [0.0, 0.5]
    assert (tmp_path / "search" / "figures" / "rho_curve.png").is_file()
    assert "Best rho" in out
    status, _, _ = run(capsys, "cross-dataset", "a=synthetic:lab", "b=synthetic:wild",
                       "--rho", "0.5", "--folds", "2", "--select-threshold", "0",
                       "-o", tmp_path / "cross", *SYNTHETIC, *TINY_MODEL)  # fmt: skip
    assert status == 0
    cross = pd.read_csv(tmp_path / "cross" / "cross_dataset.csv")
    assert set(zip(cross["train"], cross["test"])) == {("a", "b"), ("b", "a")}
    status, _, _ = run(capsys, "calibrate", "synthetic:lab", "--rho", "0.5", "--tasks", "T1",
                       "--calibration-epochs", "1", "-o", tmp_path / "calibration",
                       *SYNTHETIC, *TINY_MODEL)  # fmt: skip
    assert status == 0
    calibration = pd.read_csv(tmp_path / "calibration" / "calibration.csv")
    assert calibration["rho"].tolist() == [0.0, 0.5]


def test_manifest_command_rewrites_a_manifest(image_manifest, tmp_path, capsys):
    manifest, faces = image_manifest
    output = tmp_path / "copy.csv"
    status, out, _ = run(capsys, "manifest", "manifest", manifest, "-o", output)
    assert status == 0
    assert "32 images of 4 subjects" in out
    assert pd.read_csv(output)[list(faces.labels.columns)].equals(faces.labels)


def test_demo_writes_the_report_folder(tmp_path, capsys, monkeypatch):
    tiny = report.DemoSettings(
        n_subjects=6, n_frames=16, reference_subjects=2, image_size=48, crop_size=32,
        hidden_units=8, max_epochs=2,
        rhos=(0.0, 0.5), folds=2, cross_folds=2, calibration_tasks=("T1",), calibration_epochs=1,
    )  # fmt: skip
    monkeypatch.setattr(report, "QUICK", tiny)
    status, out, _ = run(capsys, "demo", "--quick", "--output", tmp_path, "--n-jobs", "1",
                         "--quiet")  # fmt: skip
    assert status == 0
    tables = {path.stem for path in (tmp_path / "tables").glob("*.csv")}
    assert {"table2_within", "table3_cross", "table4_calibration", "rho_search"} <= tables
    assert {"table5_per_au_within", "table6_per_au_cross"} <= tables
    figures = {path.name for path in (tmp_path / "figures").glob("*.png")}
    assert figures == {"rho_curve.png", "loss_curves.png", "heatmaps_rho_0.png",
                       "heatmaps_rho_0.5.png"}  # fmt: skip
    text = (tmp_path / "report.md").read_text()
    for heading in ("Table II", "Table III", "Table IV", "Tables V and VI", "Fig. 3"):
        assert heading in text
    assert "0.615 ± 0.029" in text  # the paper's number beside ours
    # Every number of the printed summary comes from this run's tables.
    summary = pd.read_csv(tmp_path / "tables" / "summary.csv")
    within = pd.read_csv(tmp_path / "tables" / "table2_within.csv")
    row = within[(~within["balanced"]) & (within["rho"] == 0)].iloc[0]
    expected = f"{row['macro_f1_mean']:.3f} ± {row['macro_f1_std']:.3f}"
    assert summary.loc[0, "ours rho = 0"] == expected
    assert expected in out and expected in text


def test_experiment_commands_share_a_feature_cache_folder(tmp_path, capsys):
    cache = tmp_path / "features"
    common = ["--folds", "2", *SYNTHETIC, *TINY_MODEL, "--feature-cache", cache,
              "--cache-dtype", "float16"]  # fmt: skip
    status, _, _ = run(capsys, "search", "synthetic:lab", "--rhos", "0", "0.5",
                       "-o", tmp_path / "first", *common)  # fmt: skip
    assert status == 0
    parts = sorted(cache.rglob("*.npy"))
    assert parts, "the trunk features were not written to --feature-cache"
    stamps = {part: part.stat().st_mtime_ns for part in parts}
    status, _, _ = run(capsys, "search", "synthetic:lab", "--rhos", "0.2",
                       "-o", tmp_path / "second", *common)  # fmt: skip
    assert status == 0
    assert sorted(cache.rglob("*.npy")) == parts  # same images, same trunk: nothing new
    assert {part: part.stat().st_mtime_ns for part in parts} == stamps
