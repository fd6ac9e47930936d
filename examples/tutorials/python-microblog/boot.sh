#!/bin/bash
# Starts microblog with gunicorn on port 5000, as the tutorial's boot.sh does (this app has no
# database, so no migrations first).
exec gunicorn -b :5000 --access-logfile - --error-logfile - microblog:app
