"""Prints, for each pattern given after the file, how many lines of the
file contain it: `pattern: count`."""
import sys

lines = open(sys.argv[1]).read().splitlines()
for pattern in sys.argv[2:]:
    print(f"{pattern}: {sum(pattern in line for line in lines)}")
