"""The sounding QC's own NumPy formulas against MetPy, on values spanning real soundings."""
import warnings

import numpy as np
import pytest
from metpy import calc as mpcalc
from metpy import constants as mpconst
from metpy.units import units

from pipeline.soundings import thermo

RNG = np.random.default_rng(20261128)
N = 5000
T_C = RNG.uniform(-90.0, 50.0, N)
P_HPA = RNG.uniform(10.0, 1080.0, N)
RH = RNG.uniform(0.5, 110.0, N)
SPEED = RNG.uniform(0.0, 90.0, N)
DIRECTION = RNG.uniform(0.0, 360.0, N)


def test_constants_are_metpys():
    assert thermo.RD == pytest.approx(mpconst.Rd.m_as("J/kg/K"), rel=1e-15)
    assert thermo.RV == pytest.approx(mpconst.Rv.m_as("J/kg/K"), rel=1e-15)
    assert thermo.G == pytest.approx(mpconst.g.m_as("m/s^2"), rel=1e-15)
    assert thermo.EPSILON == pytest.approx(mpconst.epsilon.m_as(""), rel=1e-15)
    assert thermo.KAPPA == pytest.approx(mpconst.kappa.m_as(""), rel=1e-15)
    assert thermo.LV == pytest.approx(mpconst.Lv.m_as("J/kg"), rel=1e-15)
    assert thermo.CP_L == pytest.approx(mpconst.Cp_l.m_as("J/kg/K"), rel=1e-15)
    assert thermo.CP_V == pytest.approx(mpconst.Cp_v.m_as("J/kg/K"), rel=1e-15)
    assert thermo.RD_OVER_G == pytest.approx((mpconst.Rd / mpconst.g).m_as("m/K"), rel=1e-15)


def test_saturation_vapor_pressure():
    ours = thermo.saturation_vapor_pressure_pa(T_C + 273.15)
    ref = mpcalc.saturation_vapor_pressure(units.Quantity(T_C, "degC")).m_as("Pa")
    np.testing.assert_allclose(ours, ref, rtol=1e-9)


def test_dewpoint_from_relative_humidity():
    ours = thermo.dewpoint_from_relative_humidity(T_C, RH)
    ref = mpcalc.dewpoint_from_relative_humidity(units.Quantity(T_C, "degC"),
                                                 units.Quantity(RH, "percent")).m_as("degC")
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)
    # a worked value: 20 degC at 50 % is a dewpoint of about 9.3 degC
    assert thermo.dewpoint_from_relative_humidity(np.array([20.0]), np.array([50.0]))[0] == pytest.approx(9.26, abs=0.02)


def test_wind_components():
    u, v = thermo.wind_components(SPEED, DIRECTION)
    ru, rv = mpcalc.wind_components(units.Quantity(SPEED, "m/s"), units.Quantity(DIRECTION, "degree"))
    np.testing.assert_allclose(u, ru.m_as("m/s"), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v, rv.m_as("m/s"), rtol=1e-12, atol=1e-12)
    # a westerly (from 270 degrees) blows towards the east: u > 0, v = 0
    u, v = thermo.wind_components(np.array([10.0]), np.array([270.0]))
    assert u[0] == pytest.approx(10.0) and v[0] == pytest.approx(0.0, abs=1e-12)


def test_virtual_temperature_from_dewpoint():
    td = T_C - RNG.uniform(0.0, 30.0, N)
    ours = thermo.virtual_temperature_from_dewpoint(P_HPA, T_C, td)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = mpcalc.virtual_temperature_from_dewpoint(units.Quantity(P_HPA, "hPa"), units.Quantity(T_C, "degC"),
                                                       units.Quantity(td, "degC")).m_as("K")
    np.testing.assert_allclose(ours, ref, rtol=1e-9, equal_nan=True)
    # saturation pressure at or above the total pressure: undefined, as in MetPy
    assert np.isnan(thermo.virtual_temperature_from_dewpoint(np.array([10.0]), np.array([45.0]), np.array([45.0]))[0])


def test_potential_temperature():
    ours = thermo.potential_temperature(P_HPA, T_C)
    ref = mpcalc.potential_temperature(units.Quantity(P_HPA, "hPa"), units.Quantity(T_C, "degC")).m_as("K")
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert thermo.potential_temperature(np.array([1000.0]), np.array([15.0]))[0] == pytest.approx(288.15)
