RELEASE command
