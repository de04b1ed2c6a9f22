"""The few thermodynamic and wind formulas the sounding QC needs, on plain NumPy arrays.

Each function is MetPy's own formula with MetPy's constants (``metpy.constants``, MetPy
1.7), written without units. Why not call MetPy: importing ``metpy.calc`` (pint's unit
registry, SciPy) costs about 1 s, and the soundings step runs once per month of data, so
that start-up was a large share of every ingest job. ``tests/ingest/test_ingest_thermo.py``
checks every function against MetPy to 1e-9 relative.
"""
from __future__ import annotations

import numpy as np

# metpy.constants (MetPy 1.7), SI units.
RD = 287.04749097718457  # dry-air gas constant, J kg-1 K-1
RV = 461.52311572606084  # water-vapour gas constant, J kg-1 K-1
G = 9.80665  # standard gravity, m s-2
EPSILON = 0.6219569100577033  # molecular weight ratio of water to dry air
KAPPA = 0.28571428571428564  # Rd / Cp_d
P0_HPA = 1000.0  # reference pressure of the potential temperature
T0 = 273.16  # triple point of water, K
ZERO_DEGC = 273.15  # K
SAT_PRESSURE_0C_PA = 611.2
LV = 2500840.0  # latent heat of vaporisation at T0, J kg-1
CP_L = 4219.400000000001  # specific heat of liquid water, J kg-1 K-1
CP_V = 1860.078011865639  # specific heat of water vapour at constant pressure, J kg-1 K-1

RD_OVER_G = RD / G  # hypsometric factor, m K-1


def saturation_vapor_pressure_pa(temperature_k: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure over liquid water (Pa), as
    ``metpy.calc.saturation_vapor_pressure`` (Ambaum 2020, temperature-dependent latent heat)."""
    t = np.asarray(temperature_k, float)
    latent_heat = LV - (CP_L - CP_V) * (t - T0)
    heat_power = (CP_L - CP_V) / RV
    exp_term = (LV / T0 - latent_heat / t) / RV
    return SAT_PRESSURE_0C_PA * (T0 / t) ** heat_power * np.exp(exp_term)


def dewpoint_from_relative_humidity(temperature_c: np.ndarray, relative_humidity_pct: np.ndarray) -> np.ndarray:
    """Dewpoint (degC) from temperature (degC) and relative humidity (%), as
    ``metpy.calc.dewpoint_from_relative_humidity`` (Bolton's inversion of e = RH e_s)."""
    e = np.asarray(relative_humidity_pct, float) / 100.0 * saturation_vapor_pressure_pa(
        np.asarray(temperature_c, float) + ZERO_DEGC)
    val = np.log(e / SAT_PRESSURE_0C_PA)
    return 243.5 * val / (17.67 - val)


def wind_components(speed: np.ndarray, direction_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) from speed and the direction the wind blows from (degrees), as
    ``metpy.calc.wind_components``."""
    rad = np.deg2rad(np.asarray(direction_deg, float))
    speed = np.asarray(speed, float)
    return -speed * np.sin(rad), -speed * np.cos(rad)


def virtual_temperature_from_dewpoint(pressure_hpa: np.ndarray, temperature_c: np.ndarray,
                                      dewpoint_c: np.ndarray) -> np.ndarray:
    """Virtual temperature (K), as ``metpy.calc.virtual_temperature_from_dewpoint``: NaN
    where the saturation vapour pressure at the dewpoint reaches the total pressure."""
    p_pa = np.asarray(pressure_hpa, float) * 100.0
    e_s = saturation_vapor_pressure_pa(np.asarray(dewpoint_c, float) + ZERO_DEGC)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(e_s >= p_pa, np.nan, EPSILON * e_s / (p_pa - e_s))
    t_k = np.asarray(temperature_c, float) + ZERO_DEGC
    return t_k * ((w + EPSILON) / (EPSILON * (1 + w)))


def potential_temperature(pressure_hpa: np.ndarray, temperature_c: np.ndarray) -> np.ndarray:
    """Potential temperature (K), as ``metpy.calc.potential_temperature``."""
    return (np.asarray(temperature_c, float) + ZERO_DEGC) / (np.asarray(pressure_hpa, float) / P0_HPA) ** KAPPA
