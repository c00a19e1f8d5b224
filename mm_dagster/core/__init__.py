"""Plain values and pure rules: windows, names, enums, errors, the clock, app outputs, endpoint
model, window reports, controller decisions and alert rules. No I/O, no Dagster; every other layer
builds on this one (see the import contracts in pyproject.toml)."""
