#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Print the version of the stock Debian 6.1 kernel the test VM boots.
. "$(dirname "$0")/lib.sh"
stock_kver
