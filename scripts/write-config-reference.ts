import fs from 'node:fs';
import { configurationReference } from '../src/config/reference.ts';

fs.writeFileSync('docs/configuration.md', configurationReference());
process.stdout.write('wrote docs/configuration.md\n');
