"""What the tests share besides fixtures (those are in tests/conftest.py), by concern:

- :mod:`.secrets`: the test secrets and the watch that fails a test after one was shown;
- :mod:`.simulation`: the exporter wired in-process to a simulator, reading an exposition;
- :mod:`.truth`: what the metrics must say, computed from the simulator's records;
- :mod:`.processes`: the ``modelarts-exporter`` command in a subprocess, free ports;
- :mod:`.waiting`: waiting for a condition (never for a time);
- :mod:`.pki`: certificates and web-config files for HTTPS;
- :mod:`.hostile`: hypothesis strategies for hostile API answers, and :mod:`.properties` how many
  examples a property test tries;
- :mod:`.deploy`: the deployment kit's files, tools and PromQL checks.
"""
