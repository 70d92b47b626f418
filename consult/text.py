"""Text from outside: JSON may carry lone UTF-16 surrogates ("\\ud800"), which are not
Unicode text and cannot be stored or sent on; they are refused where JSON is read."""


def is_clean(value) -> bool:
    """True when every string in a decoded JSON value is encodable text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(is_clean(k) and is_clean(v) for k, v in value.items())
    if isinstance(value, list):
        return all(is_clean(v) for v in value)
    return True
