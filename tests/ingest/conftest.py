from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def aum_bytes() -> bytes:
    import gzip

    return gzip.decompress((DATA / "igra2" / "AUM00011035-data.txt.gz").read_bytes())


@pytest.fixture(scope="session")
def aum_raw():
    from pipeline.readers.igra2 import read_igra2

    return read_igra2(DATA / "igra2" / "AUM00011035-data.txt.gz")


@pytest.fixture(scope="session")
def station_list():
    from pipeline.readers.igra2 import read_station_list

    return read_station_list(DATA / "igra2" / "igra2-station-list.txt")


@pytest.fixture
def one_gauge_month(tmp_path) -> Path:
    """``python -m pipeline.ingest gauges`` on one gauge (G1, 30N 113E) with 0.5 mm in
    each of the 12 hours ending 2020-01-01T12:00: the interim netCDF it wrote."""
    from pipeline.ingest import main

    (tmp_path / "stations.csv").write_text("id,lat,lon,elevation_m\nG1,30.0,113.0,20\n")
    rows = ["station,time,rain_mm"] + [f"G1,2020-01-01T{h:02d}:00,0.5" for h in range(1, 13)]
    (tmp_path / "2020-01.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "g.nc"
    main(["gauges", "--config", str(DATA.parents[1] / "config.yaml"), "--stations", str(tmp_path / "stations.csv"),
          "--month", "2020-01", "--out", str(out), str(tmp_path / "2020-01.csv")])
    return out
