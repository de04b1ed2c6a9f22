"""The dual-polarisation radar track (README "Radar"; ``snakemake results/radar``).

Does Z_DR and K_DP improve 0-1 h nowcasts of reflectivity beyond Z_H alone? The same
machinery as the main track (experiments as named input sets, the ConvLSTM U-Net, paired
block bootstrap, the report), applied to radar volumes:

- ``radar.nature_run``: the embedded default, a convective nature run on a 1 km grid at
  6-minute steps, written as CfRadial volumes of virtual radars plus gauges;
- ``radar.ingest`` / ``radar.qc`` / ``radar.grid``: readers (xradar, Py-ART) for NEXRAD
  Level II, CfRadial and ODIM_H5, QC with counts, KDP from PHIDP, CAPPIs at configured heights;
- ``radar.dataset`` / ``radar.train`` / ``radar.predict``: sequences of 10 frames in,
  10 frames out, with the main track's model, losses and output heads;
- ``radar.verify`` / ``radar.qpe`` / ``radar.baselines``: categorical scores, FSS, skill
  against lead time, spectra, QPE estimators, persistence and optical-flow extrapolation;
- ``radar.report``: the verdict lines.
"""
