import sys

# Reads standard input (cove run -i) and writes it back in capitals.
for line in sys.stdin:
    sys.stdout.write(line.upper())
