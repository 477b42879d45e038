// Size baseline: an Expo app that renders one line of text and uses nothing of the sync package.
import { createElement } from 'react';
import { Text } from 'react-native';
import { registerRootComponent } from 'expo';

registerRootComponent(() => createElement(Text, null, 'notes'));
