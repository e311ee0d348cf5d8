"""The CLI's integer option types, bounded by what each value becomes on the wire, so a number no
field can hold is a usage error (exit 2) naming the range, before anything is sent."""

from __future__ import annotations

import click

from logsvc_client.records import MAX_OFFSET, MAX_PARTITION_COUNT

#: a partition number: below the largest partition count (Kafka's 32-bit int)
PARTITION = click.IntRange(0, MAX_PARTITION_COUNT - 1)
#: a topic's partition count
PARTITION_COUNT = click.IntRange(1, MAX_PARTITION_COUNT)
#: an offset in a partition (a 64-bit long, as Kafka's)
OFFSET = click.IntRange(0, MAX_OFFSET)
#: a quota in bytes per second (the wire's uint64; 0 = no limit)
BYTES_PER_SECOND = click.IntRange(0, 2**64 - 1)
