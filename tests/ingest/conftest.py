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
