import os, platform, sys

print(f"Hello from cove: Python {platform.python_version()} as uid {os.getuid()} in {os.getcwd()}")
print("argv:", sys.argv[1:])
