import type { z } from 'zod';

/**
 * The one way the project turns a zod failure into words: each issue as `path: message`, the path
 * dotted (array indexes included) and a label standing for the value itself when the path is empty.
 * Input that fails validation is untrusted, so the list can be cut to the first few issues; what is
 * said stays bounded whatever arrives.
 */
export interface IssueFormat {
  /** What an empty path is called: the thing validated as a whole. Default `(root)`. */
  readonly root?: string;
  /** At most this many issues (the first ones); all of them when absent. */
  readonly limit?: number;
  /** Put before every path (e.g. the field the value came from). */
  readonly prefix?: string;
}

/** Each issue as `path: message`, in zod's order. */
export function issueList(error: z.ZodError, format: IssueFormat = {}): string[] {
  const { root = '(root)', limit, prefix = '' } = format;
  const issues = limit === undefined ? error.issues : error.issues.slice(0, limit);
  return issues.map((issue) => `${prefix}${issue.path.map(String).join('.') || root}: ${issue.message}`);
}

/** The issues joined by `; `, ready to follow a colon in a message. */
export function formatIssues(error: z.ZodError, format: IssueFormat = {}): string {
  return issueList(error, format).join('; ');
}
