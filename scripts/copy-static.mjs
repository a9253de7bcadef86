// Build step: the dashboard's static files (served as they are) go next to the compiled code.
import { cpSync } from 'node:fs';

cpSync(new URL('../src/dashboard/static', import.meta.url), new URL('../dist/dashboard/static', import.meta.url), {
  recursive: true,
});
