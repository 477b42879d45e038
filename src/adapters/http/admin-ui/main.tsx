import { render } from 'preact';
import { App } from './app';
import './style.css';

const root = document.getElementById('app')!;
// The "Loading…" line of the static page goes; Preact renders into an empty element.
root.replaceChildren();
render(<App />, root);
