// A front end's use of the API through a client generated from the committed openapi.json:
// openapi-typescript writes ./schema.ts, openapi-fetch does the calls. No casts: if the
// document were wrong for clients (a defaulted field marked required, a header not declared),
// `tsc --strict` would refuse this file or a check below would throw.
//
// Run by tests/contract/test_typescript_client.py with BASE_URL, USER_ID, TOKEN, OTHER_USER_ID
// and OTHER_TOKEN set; prints one line per step and exits non-zero on the first surprise.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Task = components["schemas"]["TaskPublic"];
type Problem = components["schemas"]["ProblemDetails"];

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function step(name: string, detail: string): void {
  console.log(`ok ${name}: ${detail}`);
}

function expectProblem(error: Problem | undefined, status: number, what: string): Problem {
  check(error !== undefined, `${what}: expected a problem+json body`);
  check(error.status === status, `${what}: status ${error.status}, expected ${status}`);
  check(error.type.startsWith("urn:tasks-api:problem:"), `${what}: type ${error.type}`);
  return error;
}

/** The cursor of the next page, from `Link: <...?cursor=...>; rel="next"`, if any. */
function nextCursor(link: string | null): string | undefined {
  const match = link?.match(/^<([^>]+)>; rel="next"$/);
  if (!match) return undefined;
  return new URL(match[1], "http://placeholder").searchParams.get("cursor") ?? undefined;
}

const baseUrl = env("BASE_URL");
const userId = env("USER_ID");
const otherUserId = env("OTHER_USER_ID");
const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${env("TOKEN")}` } });
const otherApi = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${env("OTHER_TOKEN")}` },
});
const anonymous = createClient<paths>({ baseUrl });
const mine = { path: { user_id: userId } };

// Create: a plain `{ title }` compiles because `description` and `completed` are optional.
const created = await api.POST("/api/{user_id}/tasks", {
  params: mine,
  body: { title: "  Buy milk  " },
});
check(created.response.status === 201, `create: ${created.response.status}`);
check(created.data !== undefined, "create: no body");
const task: Task = created.data;
check(task.title === "Buy milk" && !task.completed, "create: title not trimmed or completed set");
check(
  created.response.headers.get("Location") === `/api/${encodeURIComponent(userId)}/tasks/${task.id}`,
  `create: Location ${created.response.headers.get("Location")}`,
);
check(created.response.headers.get("ETag") !== null, "create: no ETag");
step("create", `201 ${task.id}, Location and ETag present`);

for (const title of ["Call the plumber", "Water the plants"]) {
  const more = await api.POST("/api/{user_id}/tasks", {
    params: mine,
    body: { title, completed: title.startsWith("Water") },
  });
  check(more.response.status === 201, `create ${title}: ${more.response.status}`);
}

// List with filters, following `Link` page by page.
const pendingTitles: string[] = [];
let cursor: string | undefined;
let pages = 0;
do {
  const page = await api.GET("/api/{user_id}/tasks", {
    params: {
      path: { user_id: userId },
      query: { status: "pending", sort: "title", limit: 1, ...(cursor === undefined ? {} : { cursor }) },
    },
  });
  check(page.data !== undefined, `list: ${page.response.status}`);
  pendingTitles.push(...page.data.map((t) => t.title));
  cursor = nextCursor(page.response.headers.get("Link"));
  pages += 1;
} while (cursor !== undefined && pages < 10);
check(
  JSON.stringify(pendingTitles) === JSON.stringify(["Buy milk", "Call the plumber"]),
  `list: ${JSON.stringify(pendingTitles)}`,
);
step("list", `status=pending sort=title limit=1: ${pages} pages via Link, ${pendingTitles.length} tasks`);

// Get with its ETag, then a conditional update that holds and one that does not.
const taskPath = { path: { user_id: userId, task_id: task.id } };
const got = await api.GET("/api/{user_id}/tasks/{task_id}", { params: taskPath });
const etag = got.response.headers.get("ETag");
check(got.data?.id === task.id && etag !== null, "get: no task or no ETag");
step("get", `200 with ETag ${etag}`);

// Read-your-writes: every write returns a Consistency-Token; a read that echoes it includes the
// write even when replicas lag. The header is typed on both sides, so no cast is needed.
const consistency = created.response.headers.get("Consistency-Token");
check(consistency !== null && /^[A-Za-z0-9_-]{32}$/.test(consistency), "create: no Consistency-Token");
const ownWrite = await api.GET("/api/{user_id}/tasks/{task_id}", {
  params: { ...taskPath, header: { "Consistency-Token": consistency } },
});
check(ownWrite.data?.id === task.id, `read with the token: ${ownWrite.response.status}`);
const forged = await api.GET("/api/{user_id}/tasks", {
  params: { path: { user_id: userId }, header: { "Consistency-Token": "A".repeat(32) } },
});
expectProblem(forged.error, 400, "forged Consistency-Token");
step("read your writes", "Consistency-Token echoed: 200 with the task; a forged one: 400 problem+json");

// Revalidation: If-None-Match with the current ETag is 304, no body, the same ETag.
const revalidated = await api.GET("/api/{user_id}/tasks/{task_id}", {
  params: { ...taskPath, header: { "If-None-Match": etag } },
});
check(revalidated.response.status === 304, `conditional get: ${revalidated.response.status}`);
check(revalidated.response.headers.get("ETag") === etag, "conditional get: 304 without the ETag");
check(revalidated.data === undefined, "conditional get: 304 with a body");
const listed = await api.GET("/api/{user_id}/tasks", { params: mine });
const listTag = listed.response.headers.get("ETag");
check(listed.data !== undefined && listTag !== null, "list: no ETag");
const listAgain = await api.GET("/api/{user_id}/tasks", {
  params: { ...mine, header: { "If-None-Match": listTag } },
});
check(listAgain.response.status === 304, `conditional list: ${listAgain.response.status}`);
const notNew = await api.PUT("/api/{user_id}/tasks/{task_id}", {
  params: { ...taskPath, header: { "If-None-Match": "*" } },
  body: { title: "Buy milk" },
});
expectProblem(notNew.error, 412, "If-None-Match: * on an existing task");
step("revalidate", "304 for the task and the list, 412 for If-None-Match: * on a write");

const updated = await api.PATCH("/api/{user_id}/tasks/{task_id}", {
  params: { ...taskPath, header: { "If-Match": etag } },
  body: { description: "Two litres" },
});
check(updated.data?.description === "Two litres", `conditional update: ${updated.response.status}`);
const stale = await api.PATCH("/api/{user_id}/tasks/{task_id}", {
  params: { ...taskPath, header: { "If-Match": etag } },
  body: { title: "Buy oat milk" },
});
expectProblem(stale.error, 412, "stale update");
step("conditional update", "200 with the current ETag, 412 problem+json with the old one");

const completed = await api.PATCH("/api/{user_id}/tasks/{task_id}/complete", { params: taskPath });
check(completed.data?.completed === true, `complete: ${completed.response.status}`);
step("complete", "completed is now true");

// The typed error path: 401, 403, 404, 422 all come back as ProblemDetails.
const unauthenticated = await anonymous.GET("/api/{user_id}/tasks", { params: mine });
expectProblem(unauthenticated.error, 401, "no token");
check(
  unauthenticated.response.headers.get("WWW-Authenticate")?.startsWith("Bearer") === true,
  "401 without a Bearer challenge",
);
const forbidden = await otherApi.GET("/api/{user_id}/tasks", { params: mine });
expectProblem(forbidden.error, 403, "someone else's path");
const foreign = await otherApi.GET("/api/{user_id}/tasks/{task_id}", {
  params: { path: { user_id: otherUserId, task_id: task.id } },
});
expectProblem(foreign.error, 404, "someone else's task");
const invalid = await api.POST("/api/{user_id}/tasks", { params: mine, body: { title: "" } });
const problem = expectProblem(invalid.error, 422, "empty title");
check(problem.errors?.[0]?.field === "title", `422 names ${JSON.stringify(problem.errors)}`);
step("errors", "401, 403, 404 (another user's task) and 422 (naming `title`) as ProblemDetails");

const deleted = await api.DELETE("/api/{user_id}/tasks/{task_id}", { params: taskPath });
check(deleted.response.status === 204, `delete: ${deleted.response.status}`);
const gone = await api.GET("/api/{user_id}/tasks/{task_id}", { params: taskPath });
expectProblem(gone.error, 404, "deleted task");
step("delete", "204, then 404");
