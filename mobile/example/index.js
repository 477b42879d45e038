// crypto.getRandomValues for Hermes (record ids), before anything else is evaluated.
import 'react-native-get-random-values';
import { registerRootComponent } from 'expo';
import App from './src/App';

registerRootComponent(App);
