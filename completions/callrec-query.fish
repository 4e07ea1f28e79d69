# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_callrec_query_global_optspecs
    string join \n db= endpoint= vocabulary= h/help V/version
end

function __fish_callrec_query_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_callrec_query_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_callrec_query_using_subcommand
    set -l cmd (__fish_callrec_query_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c callrec-query -n "__fish_callrec_query_needs_command" -l db -d 'The index [default: $XDG_DATA_HOME/callrec/index.sqlite]' -r -F
complete -c callrec-query -n "__fish_callrec_query_needs_command" -l endpoint -d 'S3 endpoint URL [default: $AWS_ENDPOINT_URL]' -r
complete -c callrec-query -n "__fish_callrec_query_needs_command" -l vocabulary -d 'Vocabulary file for roles, business types and results [default: as callrec-annotate: $CALLREC_VOCABULARY, else ~/.config/callrec/vocabulary.json]' -r -F
complete -c callrec-query -n "__fish_callrec_query_needs_command" -s h -l help -d 'Print help'
complete -c callrec-query -n "__fish_callrec_query_needs_command" -s V -l version -d 'Print version'
complete -c callrec-query -n "__fish_callrec_query_needs_command" -f -a "index" -d 'Build or update the index of one or more archives'
complete -c callrec-query -n "__fish_callrec_query_needs_command" -f -a "search" -d 'Search the index by the conditions of figure 7'
complete -c callrec-query -n "__fish_callrec_query_needs_command" -f -a "history" -d 'Every version of one record: the original and its corrections'
complete -c callrec-query -n "__fish_callrec_query_needs_command" -f -a "stats" -d 'Operators\' workload: calls per period, against a quota'
complete -c callrec-query -n "__fish_callrec_query_needs_command" -f -a "get" -d 'Fetch a record from the archive, fully verified'
complete -c callrec-query -n "__fish_callrec_query_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand index" -s i -l identity -d 'The server\'s key for the text info: an age identity file, a table key, or a key directory' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand index" -s p -l pubkey -d 'Also check each record\'s signature against these trusted public keys; repeatable' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand index" -l tsa-ca -d 'Trusted TSA certificates (PEM); repeatable [env: CALLREC_TSA_CA]. Only anchors whose TSA chains to one date records (anchored_at)' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand index" -l db -d 'The index [default: $XDG_DATA_HOME/callrec/index.sqlite]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand index" -l endpoint -d 'S3 endpoint URL [default: $AWS_ENDPOINT_URL]' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand index" -l vocabulary -d 'Vocabulary file for roles, business types and results [default: as callrec-annotate: $CALLREC_VOCABULARY, else ~/.config/callrec/vocabulary.json]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand index" -l json -d 'Print a summary per archive and each flagged record as JSON Lines'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand index" -s h -l help -d 'Print help'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l from -d 'From this day (YYYY-MM-DD) or time (RFC 3339)' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l to -d 'To this day (inclusive) or time' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l collection-flag -d 'Collection flag (采集标志)' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l institution -d 'Institution: its code, or else a part of its name' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l phone -d 'Phone number called' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l customer -d 'Part of the customer\'s name' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l account -d 'Account or card number' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l role -d 'Role of the person called: code, label or English name' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l business-type -d 'Business type: code, label or English name' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l result -d 'Verification result codes (1-7); repeatable or comma-separated' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l device -d 'Local device number' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l operator -d 'Operator (teller) number' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l sort -d 'Order by' -r -f -a "time\t''
operator\t''
phone\t''
result\t''
institution\t''
record\t''"
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l limit -d 'At most N records' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l db -d 'The index [default: $XDG_DATA_HOME/callrec/index.sqlite]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l endpoint -d 'S3 endpoint URL [default: $AWS_ENDPOINT_URL]' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l vocabulary -d 'Vocabulary file for roles, business types and results [default: as callrec-annotate: $CALLREC_VOCABULARY, else ~/.config/callrec/vocabulary.json]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l failed -d 'Only records that failed a check at indexing'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l all-versions -d 'Every version of corrected records, not only the latest'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -s r -l reverse -d 'Reverse the order (newest first for time)'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l csv -d 'CSV with a header (UTF-8 with a byte-order mark)'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -l json -d 'JSON Lines'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand search" -s h -l help -d 'Print help'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand history" -l db -d 'The index [default: $XDG_DATA_HOME/callrec/index.sqlite]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand history" -l endpoint -d 'S3 endpoint URL [default: $AWS_ENDPOINT_URL]' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand history" -l vocabulary -d 'Vocabulary file for roles, business types and results [default: as callrec-annotate: $CALLREC_VOCABULARY, else ~/.config/callrec/vocabulary.json]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand history" -l csv -d 'CSV with a header (UTF-8 with a byte-order mark)'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand history" -l json -d 'JSON Lines'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand history" -s h -l help -d 'Print help'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand stats" -l from -d 'From this day (YYYY-MM-DD) or time (RFC 3339)' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand stats" -l to -d 'To this day (inclusive) or time' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand stats" -l operator -d 'One operator\'s own view' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand stats" -l by -d 'Count per' -r -f -a "day\t''
week\t''
month\t''
all\t'The whole range given'"
complete -c callrec-query -n "__fish_callrec_query_using_subcommand stats" -l quota -d 'Calls each operator should make per period' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand stats" -l db -d 'The index [default: $XDG_DATA_HOME/callrec/index.sqlite]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand stats" -l endpoint -d 'S3 endpoint URL [default: $AWS_ENDPOINT_URL]' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand stats" -l vocabulary -d 'Vocabulary file for roles, business types and results [default: as callrec-annotate: $CALLREC_VOCABULARY, else ~/.config/callrec/vocabulary.json]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand stats" -l csv -d 'CSV with a header (UTF-8 with a byte-order mark)'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand stats" -l json -d 'JSON Lines'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand stats" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -s o -l output -d 'Write here (never over an existing file) [default for --text and --print: stdout]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -s p -l pubkey -d 'Trusted public key (seal.pub or a key directory); repeatable [default: $CALLREC_PUBKEY]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -s i -l identity -d 'The key for the text info: an age identity file, a table key, or a key directory' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -l tsa-ca -d 'Trusted TSA certificates (PEM) for --print\'s trusted time; repeatable [env: CALLREC_TSA_CA]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -l db -d 'The index [default: $XDG_DATA_HOME/callrec/index.sqlite]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -l endpoint -d 'S3 endpoint URL [default: $AWS_ENDPOINT_URL]' -r
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -l vocabulary -d 'Vocabulary file for roles, business types and results [default: as callrec-annotate: $CALLREC_VOCABULARY, else ~/.config/callrec/vocabulary.json]' -r -F
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -l audio -d 'The audio, as a playable file in the format its name asks for: .mka/.opus/.ogg copy Opus; .wav, .flac, .mp3, .m4a transcode when needed'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -l video -d 'The video (.mkv copies; .mp4 H.264, .webm VP9 transcode when needed)'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -l sealed -d 'The sealed file itself'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -l text -d 'The text info as JSON (needs --identity)'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -l print -d 'A printable page of every field and the verdict (needs --identity)'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand get" -s h -l help -d 'Print help'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand help; and not __fish_seen_subcommand_from index search history stats get help" -f -a "index" -d 'Build or update the index of one or more archives'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand help; and not __fish_seen_subcommand_from index search history stats get help" -f -a "search" -d 'Search the index by the conditions of figure 7'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand help; and not __fish_seen_subcommand_from index search history stats get help" -f -a "history" -d 'Every version of one record: the original and its corrections'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand help; and not __fish_seen_subcommand_from index search history stats get help" -f -a "stats" -d 'Operators\' workload: calls per period, against a quota'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand help; and not __fish_seen_subcommand_from index search history stats get help" -f -a "get" -d 'Fetch a record from the archive, fully verified'
complete -c callrec-query -n "__fish_callrec_query_using_subcommand help; and not __fish_seen_subcommand_from index search history stats get help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
