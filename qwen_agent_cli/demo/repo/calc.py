"""Small statistics helpers."""


def total(values):
    return sum(values)


def average(values):
    if not values:
        raise ValueError("average of an empty list")
    return sum(values) // len(values)


def spread(values):
    return max(values) - min(values)
