"""Pure commands: what one call changes, worked out from the snapshot its attempt read.

Each command takes the attempt (`engine/txn.py`: the snapshot, the versions, the extra keys read with it) and
the time, and records its writes and events on the attempt; it never reads the store or the clock itself. The
engine checks the arguments first and hands the command to the runner, which commits it or runs it again on a
conflict.
"""
