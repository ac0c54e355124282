#!/bin/sh
exec iocrun "$@"
