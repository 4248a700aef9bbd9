"""`dpot convert cfdbench`: case folders (case.json, u.npy, v.npy of (T, height, width)), cut into windows,
with the geometry mask computed from the case."""

from __future__ import annotations

import json

import numpy as np
from test_convert_common import assert_fails, read_dataset, run_convert

RNG = np.random.default_rng(0)


def write_case(folder, t, params, h=8, w=10):
    folder.mkdir(parents=True)
    (folder / "case.json").write_text(json.dumps(params))
    u = RNG.standard_normal((t, h, w)).astype(np.float32)
    v = RNG.standard_normal((t, h, w)).astype(np.float32)
    np.save(folder / "u.npy", u)
    np.save(folder / "v.npy", v)
    return u, v


def test_cavity_windows_and_case_splits(tmp_path):
    root = tmp_path / "cavity"
    lengths = [7, 5, 6, 4, 5, 5, 6, 5, 9, 5]  # 10 cases of different lengths
    cases = {}
    for i, t in enumerate(lengths):
        sub = "bc" if i < 5 else "prop"
        cases[i] = write_case(
            root / sub / f"case{i:04d}",
            t,
            {
                "vel_in": 1.0 + i,
                "density": 1000.0,
                "viscosity": 1e-3,
                "height": 1.0,
                "width": 2.0,
                "note": "text is not a parameter",
            },
        )
    assert run_convert("cfdbench", root, "--out", tmp_path / "out", "--frames", "3") == 0
    d = read_dataset(tmp_path / "out" / "cfdbench_cavity")
    m = d["meta"]
    assert m.channels == ["u", "v", "mask"] and m.pde == "cavity" and m.boundary == ["wall", "wall"]
    assert m.domain == [[0.0, 2.0], [0.0, 1.0]] and m.dt == 0.1
    assert m.param_names == ["density", "height", "vel_in", "viscosity", "width"]
    windows = [-(-t // 3) for t in lengths]
    # split by case: 8 cases train, 1 val, 1 test
    assert len(d["train"]["fields"]) == sum(windows[:8]) and len(d["val"]["fields"]) == windows[8]
    assert d["train"]["fields"].shape[1:] == (3, 10, 8, 3)  # (frames, x=width, y=height, C)
    u0, v0 = cases[0]
    # case 0 (7 frames): windows [0:3], [3:6], [6:7] + 2 repeats of frame 6
    np.testing.assert_array_equal(d["train"]["fields"][1, :, :, :, 0], u0[3:6].transpose(0, 2, 1))
    np.testing.assert_array_equal(d["train"]["fields"][2, 2, :, :, 1], v0[6].T)
    assert (d["train"]["fields"][..., 2] == 1).all()  # no obstacle in the cavity
    np.testing.assert_allclose(d["val"]["params"][:, 2], 9.0)  # vel_in of case 8


def test_cylinder_mask(tmp_path):
    root = tmp_path / "cylinder" / "geo"
    for i in range(3):
        write_case(
            root / f"case{i:04d}",
            4,
            {
                "vel_in": 1.0,
                "density": 1.0,
                "viscosity": 1e-3,
                "radius": 0.3,
                "x_min": -1.0,
                "x_max": 3.0,
                "y_min": -1.0,
                "y_max": 1.0,
            },
            h=8,
            w=16,
        )
    assert run_convert("cfdbench", root, "--out", tmp_path / "out", "--frames", "4", "--split", "1,1,1") == 0
    d = read_dataset(tmp_path / "out" / "cfdbench_cylinder_geo")
    m = d["meta"]
    assert m.domain == [[-1.0, 3.0], [-1.0, 1.0]] and m.boundary == ["open", "wall"]
    mask = d["train"]["fields"][0, 0, :, :, 2]  # (x, y); cell centres x = -1 + (i+.5)/4, y = -1 + (j+.5)/4
    x = -1 + (np.arange(16) + 0.5) * 0.25
    y = -1 + (np.arange(8) + 0.5) * 0.25
    expect = (x[:, None] ** 2 + y[None, :] ** 2 > 0.09).astype(np.float32)
    np.testing.assert_array_equal(mask, expect)
    assert mask.sum() == 16 * 8 - 4  # the 4 cells around the origin are solid
    assert (d["test"]["fields"][..., 2] == mask).all()


def test_dam_is_refused(tmp_path, capsys):
    write_case(tmp_path / "dam" / "bc" / "case0000", 3, {"vel_in": 1.0})
    assert_fails(capsys, "cfdbench", tmp_path / "dam", "--out", tmp_path / "o", match="dam problem")


def test_missing_v(tmp_path, capsys):
    for i in range(3):
        write_case(tmp_path / "tube" / f"case{i:04d}", 3, {"vel_in": 1.0})
    (tmp_path / "tube" / "case0001" / "v.npy").unlink()
    assert_fails(capsys, "cfdbench", tmp_path / "tube", "--out", tmp_path / "o", match="v.npy missing")


def test_no_cases(tmp_path, capsys):
    assert_fails(capsys, "cfdbench", tmp_path, "--out", tmp_path / "o", match="no CFDBench case folders")
