"""The one check for whole numbers from outside (JSON, forms, paths, socket frames).

JSON numbers arrive as Python ints of any size, and `true` is an int too: every id, amount,
limit and count is checked here before it reaches the database, where a number past a
column's type is an error (SQLite: "Python int too large"; PostgreSQL: "integer out of
range"), not an answer.
"""

# The largest id: ids are INTEGER columns, 32 bits on PostgreSQL (SQLite would take 64).
MAX_ID = 2**31 - 1


def is_whole(value, low: int, high: int) -> bool:
    """An int (not a bool) from `low` to `high`, both included."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def is_id(value) -> bool:
    """Something that could name a row: a positive int within a BIGINT."""
    return is_whole(value, 1, MAX_ID)
