"""Summarise collapsed stacks (bench/profile, bench/scale --profile): the functions with
the most samples, inclusive and on their own.

    python bench/profile_summary.py FILE
"""

import collections
import sys


def main(path: str) -> None:
    own, total, n = collections.Counter(), collections.Counter(), 0
    with open(path, errors="replace") as lines:
        rows = [line.rstrip().rpartition(" ") for line in lines]
    for stack, _, count in rows:
        if not count.isdigit():
            continue
        frames, count = stack.split(";"), int(count)
        n += count
        own[frames[-1]] += count
        for f in set(frames):
            total[f] += count
    print(f"{n} samples; most time inclusive:")
    for f, c in total.most_common(45):
        print(f"{100 * c / n:5.1f}%  {f[:150]}")
    print("own time:")
    for f, c in own.most_common(20):
        print(f"{100 * c / n:5.1f}%  {f[:150]}")


if __name__ == "__main__":
    main(sys.argv[1])
