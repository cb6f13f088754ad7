# Allocates memory until the sandbox's memory limit stops it.
hog = []
while True:
    hog.append(bytearray(8 << 20))
