#!/bin/bash
# Resource: sleep far past the timeout without using any CPU. The wall-clock
# timeout (not a CPU-time limit) must end it.
sleep 100
