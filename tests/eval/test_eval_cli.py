import json

from drivesim.cli.main import main
from drivesim.data.video import write_video
from drivesim.eval.probe_io import save_probes


def _folders(tmp_path, clips, tiny_probes):
    real, gen = tmp_path / "real", tmp_path / "gen"
    real.mkdir()
    gen.mkdir()
    for i in range(4):
        write_video(real / f"r{i}.mp4", clips[i], fps=10)
        write_video(gen / f"g{i}.mp4", clips[4 + i], fps=10)
    save_probes(tmp_path / "probes", tiny_probes)
    return real, gen


def test_eval_command_writes_report_and_plots(tmp_path, clips, tiny_probes, capsys):
    real, gen = _folders(tmp_path, clips, tiny_probes)
    out = tmp_path / "out"
    code = main(
        [
            "eval",
            f"real={real}",
            f"generated={gen}",
            f"probes={tmp_path / 'probes'}",
            f"out={out}",
            "options.window_seconds=0.6",
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["frechet"]["fid_probe"] > 0 and report["generated"]["num_clips"] == 4
    assert report["condition"] is None and len(report["drift"]) == 2  # 12 frames at 10 fps, 0.6 s windows
    assert (out / "drift.png").stat().st_size > 0 and (out / "storyboard.png").stat().st_size > 0
    assert "FID-probe" in capsys.readouterr().out


def test_eval_command_bad_inputs(tmp_path, clips, tiny_probes, capsys):
    real, gen = _folders(tmp_path, clips, tiny_probes)
    probes = tmp_path / "probes"
    assert main(["eval", f"real={tmp_path / 'nope'}", f"generated={gen}", f"probes={probes}"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", f"generated={gen}", f"probes={probes}"]) == 1
    assert "real= is required" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", f"real={real}", f"generated={empty}", f"probes={probes}"]) == 1
    assert "no videos found" in capsys.readouterr().err
    assert main(["eval", f"real={real}", f"generated={gen}", f"probes={probes}", "options.frame_step=0"]) != 0
    assert "frame_step" in capsys.readouterr().err
