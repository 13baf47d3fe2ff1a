"""The ``default=`` of json.dump for what our results hold besides plain Python values."""


def json_default(value):
    """numpy scalars (and anything else with .item()) become Python numbers; tuples and sets become lists."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
