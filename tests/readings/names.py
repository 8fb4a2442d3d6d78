"""Hypothesis strategies for real-world location and source names.

Printable text of 1 to 128 characters from every script, with the
characters that break naive code made frequent: URL delimiters, the CSV
delimiter and quote, the key separator ``~``, percent signs and spaces.
"""

from __future__ import annotations

from hypothesis import strategies as st

from chalicelib.readings import keys

TRICKY = " ~/,%+?#&=;\"'\\<>."

NAMES = (
    st.text(
        alphabet=st.one_of(
            st.sampled_from(TRICKY),
            st.characters(categories=("L", "M", "N", "P", "S")),
        ),
        min_size=1,
        max_size=128,
    )
    .map(str.strip)
    .filter(lambda name: name and len(name.encode()) <= keys.MAX_NAME_BYTES)
)
