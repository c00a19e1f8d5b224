"""The single-process run the distributed test compares with: the same windows, one shard, the
in-process executor, on the stores the environment names (a copy of the distributed run's
database, taken before it ran). `python -m tests.single_process_run WINDOW_KEY...`"""

import sys

from dagster import instance_for_test, materialize

from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource

from .distributed_config import BASE_PERIOD, distributed_config


def analyse_in_one_process(config: MonitoringConfig, window_keys: list[str]) -> None:
    """Every window of `window_keys`, oldest first, through `config`'s assets in process."""
    resource = MonitoringResource(base_period=BASE_PERIOD)
    defs = build_definitions(config, resource=resource)
    with instance_for_test() as instance:
        for key in window_keys:
            result = materialize(
                list(defs.assets), partition_key=key, instance=instance, resources={"mm": resource}
            )
            if not result.success:
                sys.exit(f"window {key} failed")
            print(f"window {key} analysed", flush=True)


if __name__ == "__main__":
    analyse_in_one_process(distributed_config(executor=None, shards=1), sys.argv[1:])
