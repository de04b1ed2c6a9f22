"""Radar readers (radar.ingest), KDP from PHIDP and QC counts (radar.qc) on real Py-ART sample files.

tests/data/radar/ holds Py-ART's own sample files (README there): values read by our
readers are compared gate by gate with Py-ART's reading of the same file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radar import qc
from radar.ingest import RadarFileError, kdp_from_phidp, read_volume, sniff_format

DATA = Path(__file__).resolve().parents[1] / "data" / "radar"
CFRADIAL = DATA / "example_cfradial_ppi.nc"
NEXRAD = DATA / "example_nexrad_archive_msg31.bz2"


def test_cfradial_values_equal_pyart():
    import pyart

    vol = read_volume(CFRADIAL)
    ref = pyart.io.read_cfradial(str(CFRADIAL))
    want = ref.fields["reflectivity_horizontal"]["data"]
    got = vol.fields["DBZH"]
    assert sniff_format(CFRADIAL) == "cfradial" and vol.source_format == "cfradial"
    assert got.shape == want.shape == (40, 42)
    np.testing.assert_array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(want))
    np.testing.assert_allclose(got.compressed(), want.compressed())
    for ray, gate in [(0, 0), (5, 10), (20, 30), (39, 41)]:
        assert np.ma.is_masked(got[ray, gate]) == np.ma.is_masked(want[ray, gate])
        if not np.ma.is_masked(want[ray, gate]):
            assert got[ray, gate] == pytest.approx(float(want[ray, gate]))
    np.testing.assert_allclose(vol.range, ref.range["data"])
    np.testing.assert_allclose(vol.azimuth, ref.azimuth["data"])
    assert vol.latitude == pytest.approx(36.49083333) and vol.altitude == pytest.approx(214.0)
    assert str(vol.time) == "2011-05-20T10:54:16"


@pytest.mark.slow
def test_nexrad_names_values_and_kdp():
    """NEXRAD Level II (msg31): REF/ZDR/PHI/RHO -> DBZH/ZDR/PHIDP/RHOHV, KDP derived from PHIDP."""
    import pyart

    vol = read_volume(NEXRAD)
    ref = pyart.io.read_nexrad_archive(str(NEXRAD))
    assert vol.source_format == "nexrad" and vol.radar_id == "KATX" and vol.nsweeps == 16
    for ours, theirs in [("DBZH", "reflectivity"), ("ZDR", "differential_reflectivity"),
                         ("PHIDP", "differential_phase"), ("RHOHV", "cross_correlation_ratio")]:
        a, b = vol.fields[ours], ref.fields[theirs]["data"]
        np.testing.assert_array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
        np.testing.assert_allclose(a.compressed(), b.compressed())
    assert vol.kdp_derived and vol.fields["KDP"].shape == vol.fields["PHIDP"].shape


def test_nexrad_field_names_from_pyart_object():
    """The name table on a Py-ART radar object with NEXRAD's long names (fast; no file)."""
    import pyart

    from radar.ingest import _from_pyart

    r = pyart.testing.make_target_radar()
    r.fields["cross_correlation_ratio"] = {"data": np.ma.ones(r.fields["reflectivity"]["data"].shape)}
    vol = _from_pyart(r, Path("KXYZ_20200101_000000.nc"), "nexrad")
    assert set(vol.fields) == {"DBZH", "RHOHV"} and vol.radar_id == "KXYZ"
    np.testing.assert_allclose(vol.fields["DBZH"], r.fields["reflectivity"]["data"])


def test_odim_round_trip_equals_cfradial(tmp_path):
    """ODIM_H5 written from the CfRadial sample with xradar.io.to_odim and read back: a round trip,
    not an independent real ODIM file (Py-ART ships none). Values equal the CfRadial reading."""
    import xradar

    dt = xradar.io.open_cfradial1_datatree(str(CFRADIAL))
    dt = dt.xradar.map_over_sweeps(lambda ds: ds.rename({"reflectivity_horizontal": "DBZH"}))
    out = tmp_path / "SAMPLE_20110520_105416.h5"
    xradar.io.to_odim(dt, str(out), source="RAD:XX")
    assert sniff_format(out) == "odim"
    vol = read_volume(out)
    cf = read_volume(CFRADIAL)
    assert vol.source_format == "odim"
    assert vol.fields["DBZH"].shape == cf.fields["DBZH"].shape
    order = np.argsort(cf.azimuth)
    order_o = np.argsort(vol.azimuth)
    a, b = vol.fields["DBZH"][order_o], cf.fields["DBZH"][order]
    np.testing.assert_array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
    # ODIM stores 8/16-bit scaled integers: equal to the quantisation step
    np.testing.assert_allclose(a.compressed(), b.compressed(), atol=0.5)
    assert vol.latitude == pytest.approx(cf.latitude, abs=1e-4)


def test_unknown_format_and_missing_dbzh(tmp_path):
    bad = tmp_path / "notes.nc"
    bad.write_text("not a radar file\n")
    with pytest.raises(RadarFileError, match=r"notes\.nc: not a NEXRAD Level II, CfRadial or ODIM_H5"):
        read_volume(bad)
    import pyart

    r = pyart.io.read_cfradial(str(CFRADIAL))
    r.fields = {"velocity": {**r.fields["reflectivity_horizontal"], "units": "m/s"}}
    nodbz = tmp_path / "X_20110520_105416.nc"
    pyart.io.write_cfradial(str(nodbz), r)
    with pytest.raises(RadarFileError, match=r"no reflectivity field \(DBZH\) among \['VRADH'\]"):
        read_volume(nodbz)


def test_cli_one_line_error(tmp_path, capsys):
    from radar.grid import main

    raw = tmp_path / "raw" / "RAD1"
    raw.mkdir(parents=True)
    (raw / "RAD1_20240601_000000.nc").write_text("garbage")
    rc = main(["--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "c.zarr"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("error: ") and "RAD1_20240601_000000.nc: not a NEXRAD" in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_kdp_from_analytic_phidp_ramp():
    """PHIDP = 2 K r + offset (+ noise) along each ray: KDP = K away from the ray ends."""
    rng = np.random.default_rng(0)
    r = np.arange(200) * 250.0 + 125.0  # m
    k_true = np.array([0.5, 1.0, 2.5])[:, None]  # deg/km
    phi = 2 * k_true * r[None, :] / 1000.0 + 30.0 + rng.normal(0, 0.5, (3, r.size))
    phi = np.ma.masked_array(phi, mask=np.zeros_like(phi, bool))
    phi.mask[:, 100:104] = True  # a gap, filled by interpolation, masked in the output
    kdp = kdp_from_phidp(phi, r, window_gates=9, median_gates=5)
    inner = kdp[:, 10:-10]
    np.testing.assert_allclose(np.ma.median(inner, axis=1), k_true.ravel(), atol=0.05)
    assert np.ma.getmaskarray(kdp)[:, 100:104].all() and not np.ma.getmaskarray(kdp)[:, 50].any()
    # a fold at 180 deg is unwrapped
    folded = np.ma.masked_array(((phi.filled(0) + 180) % 360) - 180, mask=phi.mask)
    np.testing.assert_allclose(kdp_from_phidp(folded, r)[:, 10:-10].mean(axis=1), k_true.ravel(), atol=0.05)


def test_kdp_against_pyart_vulpiani():
    """Same smooth PHIDP profile: our KDP agrees with Py-ART's kdp_vulpiani in the interior."""
    import pyart

    radar = pyart.testing.make_empty_ppi_radar(300, 4, 1)
    radar.range["data"] = (np.arange(300) * 250.0).astype("float32")
    r_km = radar.range["data"] / 1000.0
    k = 1.5 * np.exp(-((r_km - 35.0) / 10.0) ** 2)  # deg/km
    phi = 10.0 + 2 * np.cumsum(k) * 0.25
    radar.fields["differential_phase"] = {"data": np.ma.masked_array(np.tile(phi, (4, 1)))}
    radar.fields["reflectivity"] = {"data": np.ma.masked_array(np.full((4, 300), 30.0))}
    kdp_p, _ = pyart.retrieve.kdp_vulpiani(radar, psidp_field="differential_phase",
                                           windsize=10, band="C", n_iter=1)
    ours = kdp_from_phidp(radar.fields["differential_phase"]["data"], radar.range["data"])
    sl = slice(40, 260)
    np.testing.assert_allclose(ours[0, sl], k[sl], atol=0.06)
    np.testing.assert_allclose(ours[0, sl], np.ma.getdata(kdp_p["data"])[0, sl], atol=0.15)


def test_qc_counts_constructed_case():
    """One ray per test: each removes exactly the gates built to fail it."""
    ng = 40
    r = np.arange(ng) * 500.0 + 250.0
    dbz = np.full((4, ng), 30.0)
    mask = np.zeros((4, ng), bool)
    rho = np.full((4, ng), 0.99)
    snr = np.full((4, ng), 20.0)
    rho[0, 30:35] = 0.5  # 5 low-RHOHV gates
    snr[1, 30:32] = 1.0  # 2 low-SNR gates
    dbz[2, 4:16:2] = 65.0  # alternating spikes within 20 km: clutter texture
    mask[3, :] = True
    mask[3, 35] = False  # one isolated gate: speckle
    fields = {"DBZH": np.ma.masked_array(dbz, mask=mask), "RHOHV": np.ma.masked_array(rho),
              "SNR": np.ma.masked_array(snr)}
    removed, counts = qc.quality_control(fields, r, {"clutter_texture_db": 12.0, "clutter_range_km": 20.0})
    assert counts == {"rhohv": 5, "snr": 2, "clutter": 17, "speckle": 2}
    np.testing.assert_array_equal(np.flatnonzero(removed[0]), np.arange(30, 35))
    np.testing.assert_array_equal(np.flatnonzero(removed[1]), [30, 31])
    # clutter: the spiky stretch (4..15) and the texture window's reach (0..17, 18 gates), of which the
    # remaining echo gate left isolated there goes as speckle (17 + 1)
    np.testing.assert_array_equal(np.flatnonzero(removed[2]), np.arange(18))
    np.testing.assert_array_equal(np.flatnonzero(removed[3]), [35])
    assert removed.sum() == sum(counts.values())
    assert not removed[~np.ma.getmaskarray(fields["DBZH"]) == False].any()  # noqa: E712 - no-echo gates untouched
