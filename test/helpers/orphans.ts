/**
 * A shell script that leaves `n` short-lived orphans behind: each `( sleep & )` subshell exits at
 * once, re-parenting its sleep to the nearest reaper. It waits until every one has exited (only
 * zombies may be left), gives the reaper up to 2 s to clear them, prints
 * "zombies=Z sleeps=S" (what is left) and exits 7.
 */
export function orphansScript(n: number): string {
  return `
  for i in $(seq ${n}); do ( sleep 0.05 & ); done
  while grep -qs '(sleep) [^Z]' /proc/[0-9]*/stat; do sleep 0.02; done
  n=0; while [ $n -lt 100 ] && grep -qs '(sleep)' /proc/[0-9]*/stat; do sleep 0.02; n=$((n+1)); done
  echo "zombies=$(grep -s ') Z ' /proc/[0-9]*/stat | wc -l) sleeps=$(grep -ls '(sleep)' /proc/[0-9]*/stat | wc -l)"
  exit 7`;
}
