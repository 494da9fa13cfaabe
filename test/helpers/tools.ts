import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export function have(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A test that needs an external program. In CI a missing tool is a failure (the CI script
 * installs them); on a developer's machine the test says what to install and skips.
 */
export function needs(t: TestContext, tool: string, install: string): boolean {
  if (have(tool)) return true;
  const message = `${tool} is not installed (${install})`;
  if (process.env.CI) throw new Error(`${message}: CI must install it`);
  t.skip(message);
  return false;
}

export const isRoot = process.getuid?.() === 0;

/** A Python module for /usr/bin/python3 (Debian's python3-* packages); like needs(). */
export function needsPython(t: TestContext, module: string, install: string): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', `import ${module}`], { stdio: 'ignore' });
    return true;
  } catch {
    const message = `python module ${module} is not installed (${install})`;
    if (process.env.CI) throw new Error(`${message}: CI must install it`);
    t.skip(message);
    return false;
  }
}
