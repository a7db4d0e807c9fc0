"""The benchmarks: one script per figure, run as ``python bench/NAME.py`` (``make bench``
runs them all), each saving its figures with ``--json bench/results/NAME.json``, and
``bench/report.py`` writing the README's figures from those files.

Scripts: relay_load.py (the relay against naive baselines; its load generator is
load_generator.py, its relays and scenarios scenarios.py, its report
relay_load_report.py, the baseline naive_relay.py) · relay_memory.py · engine_speed.py ·
frame_time.py · grid_timing.py (with grid_jack.py, grid_show.py, grid_figures.py) ·
dtmf_speed.py · soak.py (with soak_plan.py, soak_seed.py, soak_billboard.py,
soak_report.py, and soak_crowd.py: the rehearsal crowd's names it uses).

Shared: stats.py (percentiles, rates, the machine a run was measured on, the result
file) · wsclient.py (the one WebSocket client, and the one reader of what a relay
sends) · procs.py (ports, processes, /proc, pinning).
"""
