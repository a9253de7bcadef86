// `npm test` step: fails when the modules of src/ import each other in a cycle, type-only imports included
// (a cycle of types is still two files that cannot be read, or changed, one without the other).
import { parseCircular, parseDependencyTree, prettyCircular } from 'dpdm';

const tree = await parseDependencyTree('src/**/*.ts', {
  context: process.cwd(),
  tsconfig: 'tsconfig.json',
  transform: false, // keep type-only imports
});
const cycles = parseCircular(tree);
if (cycles.length > 0) {
  console.error('Import cycles in src/ (break each: shared types go to a file both sides import):');
  console.error(prettyCircular(cycles));
  process.exit(1);
}
console.log(`No import cycles in src/ (${Object.keys(tree).filter((id) => id.startsWith('src/')).length} modules).`);
