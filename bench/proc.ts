/**
 * Process accounting for the benchmarks, from `/proc` (Linux): CPU time of a process, or of a
 * process and its descendants (the service's bin re-executes node for `serve`, so the serving
 * process is a child of the one the bench started).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

/** Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, almost always 100). */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Fields of `/proc/<pid>/stat` after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) the process has used so far, in µs; 0 once it is gone. */
export function processCpuUs(pid: number): number {
  const f = statFields(pid);
  // After the name: state(3) ppid(4) … utime(14) stime(15), so indices 11 and 12 here.
  if (f === undefined) return 0;
  return ((Number(f[11]) + Number(f[12])) * 1e6) / clockTicks();
}

/** The process and all its descendants alive now (a scan of `/proc`). */
export function processTree(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f === undefined) continue;
    const ppid = Number(f[1]);
    parents.set(ppid, [...(parents.get(ppid) ?? []), Number(name)]);
  }
  const tree: number[] = [];
  const walk = (p: number) => {
    tree.push(p);
    for (const c of parents.get(p) ?? []) walk(c);
  };
  walk(pid);
  return tree;
}

/** CPU time (µs) of several processes together. */
export function treeCpuUs(pids: number[]): number {
  return pids.reduce((sum, p) => sum + processCpuUs(p), 0);
}

/**
 * CPU time (µs) of every process named `command` (e.g. `postgres`: the server and its backends),
 * plus what its exited children used (cutime, cstime): a backend that ends between two readings
 * is still counted. Processes that themselves exit between two readings are not.
 */
export function commandCpuUs(command: string): number {
  let sum = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let comm: string;
    try {
      comm = readFileSync(`/proc/${name}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm !== command) continue;
    const f = statFields(Number(name));
    if (f === undefined) continue;
    // utime(14) stime(15) cutime(16) cstime(17): indices 11–14 here.
    sum += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return (sum * 1e6) / clockTicks();
}
