#!/bin/sh
echo "$GREETING"
cat /etc/built-by
