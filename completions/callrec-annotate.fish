complete -c callrec-annotate -l operator -d 'Operator (teller) number' -r
complete -c callrec-annotate -l operator-name -d 'Operator\'s name' -r
complete -c callrec-annotate -l institution -d 'Institution code' -r
complete -c callrec-annotate -l institution-name -d 'Institution name' -r
complete -c callrec-annotate -l customer -d 'Name of the customer called' -r
complete -c callrec-annotate -l role -d 'Role of the person called (code or label)' -r
complete -c callrec-annotate -l business -d 'Business type (code or label)' -r
complete -c callrec-annotate -l account -d 'Account number (8-32 digits)' -r
complete -c callrec-annotate -l card -d 'Bank card number (Luhn-checked); stored as the account' -r
complete -c callrec-annotate -l credit-code -d 'Unified social credit code of the company' -r
complete -c callrec-annotate -l id-number -d 'Personal ID number (18 characters)' -r
complete -c callrec-annotate -l result -d 'Verification result, 1-7 (code or label)' -r
complete -c callrec-annotate -l remark -d 'Free remark' -r
complete -c callrec-annotate -l flag -d 'Collection flag, e.g. 01' -r
complete -c callrec-annotate -l phone -d 'Phone number of the call (normally set by callrec-capture)' -r
complete -c callrec-annotate -l from-csv -d 'Fields for many records from a CSV file with a header row' -r -F
complete -c callrec-annotate -l from-json -d 'Fields for many records from a JSON Lines file' -r -F
complete -c callrec-annotate -l identity -d 'Reads sealed records\' text info, to correct them: an age identity, a table key or a key directory [default: the key directory, as for callrec-seal]' -r -F
complete -c callrec-annotate -l vocabulary -d 'Vocabulary file extending or replacing the built-in terms' -r -F
complete -c callrec-annotate -s o -l output-dir -d 'Where corrections of sealed records are written' -r -F
complete -c callrec-annotate -s i -l interactive -d 'Ask for each missing field on the terminal, with the vocabulary as numbered choices'
complete -c callrec-annotate -l print-line -d 'Print each record\'s figure 3C line instead of its path'
complete -c callrec-annotate -l json -d 'Print each record as JSON Lines ({"type":"record","path":...,"record":{...}})'
complete -c callrec-annotate -s 0 -l null -d 'Read and write path lists NUL-separated instead of one per line'
complete -c callrec-annotate -s h -l help -d 'Print help (see more with \'--help\')'
complete -c callrec-annotate -s V -l version -d 'Print version'
