import type { DerivationCache } from "../attest/index.js";

/** The derivations of a build closure, dependencies first (read through `derivations`, once each). */
export async function buildClosure(derivations: DerivationCache, root: string): Promise<string[]> {
  const order: string[] = [];
  const seen = new Set<string>();
  // Iterative post-order: deep graphs must not exhaust the stack.
  const stack: { drv: string; inputs?: string[] }[] = [{ drv: root }];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (!top) break;
    if (!top.inputs) {
      const d = await derivations.get(top.drv);
      top.inputs = d.inputDrvs.map(([p]) => p).filter((p) => !seen.has(p));
    }
    const next = top.inputs.pop();
    if (next === undefined) {
      order.push(top.drv);
      stack.pop();
    } else if (!seen.has(next)) {
      seen.add(next);
      stack.push({ drv: next });
    }
  }
  return order;
}
