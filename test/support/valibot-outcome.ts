import * as v from 'valibot';

/** What a valibot parse gives: the output, or each issue's message, kind, type, path, expected, received, requirement. */
export function outcome(schema: v.GenericSchema, input: unknown): unknown {
  const r = v.safeParse(schema, input);
  if (r.success) return { output: r.output };
  return {
    issues: r.issues.map((i) => ({
      message: i.message,
      kind: i.kind,
      type: i.type,
      path: i.path?.map((p) => p.key),
      expected: i.expected,
      received: i.received,
      requirement: String(i.requirement),
    })),
  };
}
