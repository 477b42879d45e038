/**
 * Resolves once `condition` holds, asking again after each turn of the event loop: a wait on a
 * state, never a guess at how long it takes. The calling test's timeout bounds it.
 */
export async function until(condition: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setImmediate(resolve));
}
