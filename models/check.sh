#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# models/check.sh [MODEL.pml...]: check the protocol models with spin
# (make model-check; make check runs it early). Installs nothing: spin and
# gcc must be there (tools/vm/deps.sh installs Debian's spin).
#
# Every models/*.pml lists its configurations in "@check" lines:
#
#   @check EXPECT MODE [-DFLAG...] : what it checks
#
#   EXPECT  pass  the exhaustive search finds nothing
#           fail  a deliberate mutation: the search must find the bug, which
#                 shows the model can fail
#           bug   a real bug of the code the model describes: the search
#                 must reproduce it (until the code and the model are fixed)
#   MODE    safety  assertions and invalid end states (deadlocks, processes
#                   that never finish)
#           cycles  any cycle (no progress labels: every cycle counts), so
#                   every run ends
#
# One line per configuration: verdict, model, flags, states explored, time.
# Exit 0 when every configuration did what it must. KPRIM_MODEL_MEMLIM
# (MB, default 2048) bounds pan's memory; a search that runs out of memory
# or depth is a failure, never a pass.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)

fail() { printf 'model-check: %s\n' "$*" >&2; exit 1; }

command -v spin >/dev/null 2>&1 ||
	fail "spin is not installed (Debian: apt-get install spin; tools/vm/deps.sh installs it)"
command -v "${CC:-gcc}" >/dev/null 2>&1 ||
	fail "${CC:-gcc} is not installed (Debian: apt-get install build-essential)"

memlim=${KPRIM_MODEL_MEMLIM:-2048}
models=("$@")
[ ${#models[@]} = 0 ] && models=("$top"/models/*.pml)

work=$(mktemp -d /tmp/kprim-model.XXXXXX) || fail "mktemp failed"
trap 'rm -rf "$work"' EXIT

bad=0
total=0
start=$(date +%s)

# check MODEL EXPECT MODE DESCRIPTION FLAGS...
check() {
	local model=$1 expect=$2 mode=$3 desc=$4 name out dir t0 t1 states \
		errors what verdict cflags runflags opt
	shift 4
	name=$(basename "$model" .pml)
	dir="$work/$name.$total"
	mkdir -p "$dir"
	cp "$model" "$dir/"
	case $mode in
	safety) cflags="-DSAFETY"; runflags="" ;;
	cycles) cflags="-DNP"; runflags="-l" ;;
	*) echo "FAIL $name: unknown mode '$mode' in an @check line"; return 1 ;;
	esac
	# gcc's time on pan.c is most of a small search: -Og compiles in half
	# the time of -O1 for a search about 10% slower; a mutation's search
	# stops at its first violation, so -O0.
	opt=-Og
	[ "$expect" = pass ] || opt=-O0
	t0=$(date +%s.%N)
	if ! (cd "$dir" && spin -a "$@" "$name.pml" >spin.out 2>&1); then
		echo "FAIL $name [$*]: spin -a failed:"
		sed 's/^/    /' "$dir/spin.out"
		return 1
	fi
	if ! (cd "$dir" && "${CC:-gcc}" $opt -w $cflags -DCOLLAPSE \
		-DMEMLIM="$memlim" -o pan pan.c >cc.out 2>&1); then
		echo "FAIL $name [$*]: compiling pan failed:"
		sed 's/^/    /' "$dir/cc.out"
		return 1
	fi
	# -m: search depth (runs are about 250 deep); -w: hash table 2^24
	(cd "$dir" && ./pan -m100000 -w24 $runflags >pan.out 2>&1)
	t1=$(date +%s.%N)
	out="$dir/pan.out"
	states=$(awk '/states, stored/ { print $1; exit }' "$out")
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | head -n 1)
	what=$(grep -m1 '^pan:1:' "$out" | sed 's/^pan:1: //')
	t=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')

	# pan stops at its memory bound with "reached -DMEMLIM bound" and
	# "Warning: Search not completed" yet "errors: 0": incomplete, never a
	# pass. (A mutation that stops at its first error may say "not
	# completed" too: that one has its error.)
	if grep -qE 'out of memory|max search depth too small|reached -DMEMLIM bound' "$out" ||
	   { grep -qi 'search not completed' "$out" && [ "$errors" = 0 ]; } ||
	   [ -z "$errors" ]; then
		echo "FAIL $name [$*] $desc: search incomplete ($states states, ${t}s):"
		grep -iE 'out of memory|depth too small|MEMLIM|not completed|error' "$out" |
			head -n 3 | sed 's/^/    /'
		return 1
	fi
	case $expect in
	pass)
		if [ "$errors" = 0 ]; then
			echo "PASS $name [${*:-default}] $desc: $states states, ${t}s"
			return 0
		fi
		echo "FAIL $name [${*:-default}] $desc: $what ($states states, ${t}s)"
		echo "    last steps of the counterexample:"
		(cd "$dir" && spin -t -p "$@" "$name.pml" 2>&1 |
			grep -E '^ *[0-9]+:[[:space:]]+proc|Error|failed' |
			tail -n 25 | sed 's/^/    /')
		echo "    replay: cp $model /tmp && cd /tmp && spin -a $* $name.pml && gcc -DSAFETY -o pan pan.c && ./pan -m100000 && spin -t -p $* $name.pml"
		return 1
		;;
	fail|bug)
		verdict="fails as it must"
		[ "$expect" = bug ] && verdict="KNOWN BUG reproduced"
		if [ "$errors" != 0 ] &&
		   echo "$what" | grep -qE 'assertion violated|invalid end state|cycle'; then
			echo "PASS $name [$*] $desc: $verdict: $what ($states states, ${t}s)"
			return 0
		fi
		echo "FAIL $name [$*] $desc: expected a violation, the search found none ($states states, ${t}s)"
		[ "$expect" = bug ] &&
			echo "    fixed in the code? then make the model follow the fix and expect pass"
		return 1
		;;
	*)
		echo "FAIL $name: unknown expectation '$expect' in an @check line"
		return 1
		;;
	esac
}

for m in "${models[@]}"; do
	[ -f "$m" ] || fail "no such model: $m"
	lines=$(grep -E '^[ */]*@check ' "$m" | sed -E 's/^[ */]*@check +//')
	if [ -z "$lines" ]; then
		echo "FAIL $(basename "$m"): no @check lines"
		bad=$((bad + 1))
		continue
	fi
	while IFS= read -r line; do
		spec=${line%%:*}
		desc=${line#*:}
		desc=${desc# }
		read -r -a words <<<"$spec"
		total=$((total + 1))
		check "$m" "${words[0]}" "${words[1]}" "$desc" "${words[@]:2}" ||
			bad=$((bad + 1))
	done <<<"$lines"
done

echo "model-check: $((total - bad)) of $total configurations as expected in $(( $(date +%s) - start ))s"
[ "$bad" = 0 ]
