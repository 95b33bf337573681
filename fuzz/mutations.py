"""Seeded mutations of a file's bytes, aimed by what the file's structure says.

A format module (``fuzz.macho``, ``fuzz.packages``, ...) describes a valid seed as ``Field``s
(an integer at an offset: counts, sizes, offsets, versions) and ``Region``s (a stretch of bytes
with one meaning: load commands, a CodeDirectory, a CMS blob, a heap member). ``mutate`` then
applies a few mutations chosen by the ``random.Random`` it is given, so that a campaign's seed
and a mutant's number give the same mutant again. Most go where parsers trust the file: an
integer set to a boundary, to another field's value or to the file's length; some are blind
(bit flips, truncation, spliced or repeated bytes), to reach what the fields do not name.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

BOUNDARIES = (0, 1, 2, 3, 4, 7, 8, 16, 0x7F, 0x80, 0xFF, 0x100, 0xFFF, 0x1000, 0x4000, 0x7FFF,
              0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFE,
              0xFFFFFFFF, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)  # fmt: skip


@dataclass(frozen=True)
class Field:
    """An unsigned integer of ``size`` bytes at ``offset`` in the seed."""

    name: str
    offset: int
    size: int
    byteorder: str = "little"

    def read(self, data: bytes | bytearray) -> int:
        return int.from_bytes(data[self.offset : self.offset + self.size], self.byteorder)

    def write(self, data: bytearray, value: int) -> None:
        value &= (1 << (8 * self.size)) - 1
        data[self.offset : self.offset + self.size] = value.to_bytes(self.size, self.byteorder)


@dataclass(frozen=True)
class Region:
    """``length`` bytes at ``offset`` in the seed with one meaning (``name``)."""

    name: str
    offset: int
    length: int


@dataclass(frozen=True)
class Layout:
    """What a format module found in a seed."""

    fields: list[Field]
    regions: list[Region]


def mutate(rng: random.Random, data: bytes, layout: Layout, count: int) -> tuple[bytes, list[str]]:
    """``count`` mutations of ``data``; the mutant and what each mutation did."""
    mutant = bytearray(data)
    steps = []
    for _ in range(count):
        operation = rng.choices(OPERATIONS, weights=[weight for _, weight in OPERATIONS])[0][0]
        steps.append(operation(rng, mutant, layout))
    return bytes(mutant), steps


def interesting_value(rng: random.Random, field: Field, data: bytearray, layout: Layout) -> int:
    current = field.read(data)
    choice = rng.randrange(5)
    if choice == 0:
        return rng.choice(BOUNDARIES)
    if choice == 1:
        return current + rng.choice((-4096, -16, -8, -4, -2, -1, 1, 2, 4, 8, 16, 4096))
    if choice == 2:
        return len(data) + rng.randrange(-16, 17)
    if choice == 3 and layout.fields:
        return rng.choice(layout.fields).read(data)
    return rng.getrandbits(8 * field.size)


def set_field(rng: random.Random, data: bytearray, layout: Layout) -> str:
    fields = [field for field in layout.fields if field.offset + field.size <= len(data)]
    if not fields:
        return flip_bits(rng, data, layout)
    field = rng.choice(fields)
    value = interesting_value(rng, field, data, layout)
    field.write(data, value)
    return f"{field.name} = {value:#x}"


def region_in(rng: random.Random, data: bytearray, layout: Layout) -> Region:
    regions = [region for region in layout.regions if region.offset < len(data)]
    if regions and rng.random() < 0.8:
        return rng.choice(regions)
    return Region("anywhere", 0, len(data))


def flip_bits(rng: random.Random, data: bytearray, layout: Layout) -> str:
    region = region_in(rng, data, layout)
    if not data:
        return "nothing to flip"
    flips = rng.choice((1, 1, 2, 8))
    for _ in range(flips):
        position = min(region.offset + rng.randrange(max(1, region.length)), len(data) - 1)
        data[position] ^= 1 << rng.randrange(8)
    return f"{flips} bit(s) flipped in {region.name}"


def overwrite(rng: random.Random, data: bytearray, layout: Layout) -> str:
    region = region_in(rng, data, layout)
    start = min(region.offset + rng.randrange(max(1, region.length)), len(data))
    length = min(rng.choice((1, 4, 16, 256, region.length)), len(data) - start)
    filler = rng.choice(("zeros", "ones", "random"))
    data[start : start + length] = {
        "zeros": bytes(length),
        "ones": b"\xff" * length,
        "random": rng.randbytes(length),
    }[filler]
    return f"{length} bytes of {region.name} at +{start - region.offset} set to {filler}"


def truncate(rng: random.Random, data: bytearray, layout: Layout) -> str:
    ends = [region.offset + rng.randrange(max(1, region.length)) for region in layout.regions]
    end = rng.choice([*ends, rng.randrange(len(data) + 1)]) if data else 0
    del data[end:]
    return f"cut at {end}"


def grow(rng: random.Random, data: bytearray, layout: Layout) -> str:
    region = region_in(rng, data, layout)
    copy = bytes(data[region.offset : region.offset + region.length])
    where = rng.choice((len(data), region.offset, region.offset + len(copy)))
    data[where:where] = copy if rng.random() < 0.5 else rng.randbytes(rng.choice((1, 16, 4096)))
    return f"bytes inserted at {where} (near {region.name})"


OPERATIONS = [(set_field, 6), (flip_bits, 2), (overwrite, 2), (truncate, 1), (grow, 1)]
