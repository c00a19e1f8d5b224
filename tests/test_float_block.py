"""`storage.float_block`: float columns gathered batch by batch equal the columns of the table."""

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_dagster.storage.float_block import FloatBlock, FloatBuffer, float_columns


def _batches(sizes: list[int], seed: int) -> list[pa.RecordBatch]:
    rng = np.random.default_rng(seed)
    batches = []
    for size in sizes:
        a = rng.standard_normal(size)
        nulls = rng.random(size) < 0.2
        batches.append(
            pa.record_batch(
                {
                    "a": pa.array(a, mask=nulls),
                    "label": pa.array([str(i) for i in range(size)], type=pa.string()),
                    "b": pa.array(rng.standard_normal(size)),
                    "n": pa.array(np.arange(size, dtype=np.int64)),
                }
            )
        )
    return batches


def test_float_columns_are_the_float64_ones_in_order() -> None:
    schema = _batches([1], 0)[0].schema
    assert float_columns(schema) == ("a", "b")
    assert float_columns(schema, leave_out=["a"]) == ("b",)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 50), min_size=1, max_size=6),
    capacity=st.integers(0, 120),
    seed=st.integers(0, 1000),
    masked=st.booleans(),
)
def test_gathered_rows_equal_the_table_in_any_order(
    sizes: list[int], capacity: int, seed: int, masked: bool
) -> None:
    """Whatever the capacity guessed (too small: it grows), rows kept by a mask, nulls as NaN,
    and put in a given order afterwards."""
    batches = _batches(sizes, seed)
    rng = np.random.default_rng(seed + 1)
    block = FloatBlock(("b", "a"), capacity)
    kept = []
    for batch in batches:
        keep = rng.random(batch.num_rows) < 0.6 if masked else None
        block.add(batch, keep)
        kept.append(batch if keep is None else batch.filter(pa.array(keep)))
    table = pa.Table.from_batches(kept, batches[0].schema)
    expected = np.column_stack(
        [table["b"].to_numpy(zero_copy_only=False), table["a"].to_numpy(zero_copy_only=False)]
    ).reshape(-1, 2)
    assert block.rows == table.num_rows
    np.testing.assert_array_equal(block.values(), expected)
    order = rng.permutation(table.num_rows)
    sorted_values = block.values(order)
    np.testing.assert_array_equal(sorted_values, expected[order])
    assert (
        block.rows < 2 or sorted_values.strides[0] == 8
    )  # each column contiguous (the kernels read columns)


def test_a_buffer_gives_a_block_the_memory_of_the_last_one_once_nothing_holds_it() -> None:
    buffer = FloatBuffer()
    first = FloatBlock(("b", "a"), 30, buffer)
    first.add(_batches([30], 1)[0])
    kept = first.values()[5:9]  # a view a frame would hold
    del first
    second = FloatBlock(("b", "a"), 20, buffer)  # the memory is still seen: new memory
    assert buffer.reused == 0 and not np.shares_memory(second.values(), kept)
    before = kept.copy()
    second.add(_batches([20], 2)[0])
    np.testing.assert_array_equal(kept, before)  # what the first block's frames see is untouched
    del second, kept
    third = FloatBlock(("b", "a"), 25, buffer)
    assert buffer.reused == 1
    batch = _batches([25], 3)[0]
    third.add(batch)
    np.testing.assert_array_equal(third.values()[:, 0], batch.column("b").to_numpy())
    assert third.values().strides[0] == 8  # column-major, as without a buffer
    del third
    larger = FloatBlock(("b", "a"), 60, buffer)  # too small a memory (room for 37): new, kept
    assert buffer.reused == 1
    del larger
    FloatBlock(("b", "a"), 70, buffer)  # room for a quarter more than the largest block
    assert buffer.reused == 2
